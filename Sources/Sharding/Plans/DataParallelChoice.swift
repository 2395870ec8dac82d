import Models

extension ShardingPlan {
    /// This plan with some table-wise tables replicated on every rank instead, where
    /// `predictor` says it pays: candidates of at most `task.dataParallelBytes` (none when it is
    /// nil), smallest first, each kept as data-parallel only when the plan's predicted step gets
    /// cheaper and every rank stays within memory.
    /// The learned planners use it, so they choose the type by their own cost model.
    public func replicatingWherePredictedCheaper(_ task: PlanningTask, predictor: any PlanCostModel) -> ShardingPlan {
        guard task.ranks > 1, let limit = task.dataParallelBytes else { return self }
        let index = Dictionary(uniqueKeysWithValues: task.tables.enumerated().map { ($1.name, $0) })
        let candidates = placements.indices.filter { placements[$0].isTableWise }
            .compactMap { p -> (placement: Int, bytes: Int)? in
                guard let t = index[placements[p].table] else { return nil }
                let bytes = task.bytes(ofTable: t)
                return bytes <= limit ? (p, bytes) : nil
            }
            .sorted { ($0.bytes, $0.placement) < ($1.bytes, $1.placement) }
        var best = self
        guard var bestCost = try? predictor.cost(of: best, tables: task.tables).total else { return self }
        for candidate in candidates {
            var trial = best
            trial.placements[candidate.placement] = .replicated(placements[candidate.placement].table)
            guard trial.memoryByRank(tables: task.tables, optimizer: task.optimizer).allSatisfy({ $0 <= task.memoryPerRank }),
                  let cost = try? predictor.cost(of: trial, tables: task.tables).total, cost < bestCost else { continue }
            best = trial
            bestCost = cost
        }
        return best
    }
}
