import Foundation
import Models

/// A local search over plans checked by measurement. From a plan, it proposes moves that take
/// work off the slowest rank (by the measured cost): a block moved to another rank, or swapped
/// with one there of about half its cost; a block halved by columns (halves of 16 columns or
/// more) or by rows, one half moved; a table of at most `task.dataParallelBytes` replicated; a
/// replicated one placed whole. Blocks of one table that meet on a rank are fused. Every
/// candidate is priced first by `predictor`, as its change to the measured per-rank costs (a
/// model's level can be off where its differences hold), and the best few are measured
/// together with the current plan (in the same rounds, where the oracle can; see
/// `CostOracle.jointGroups`), so a drift of the machine's speed falls on both. A move is kept
/// only when `measure` confirms it: over `confirmations` such joint measurements, the
/// candidate's median ratio to the current plan is below 1. The search stops when `patience`
/// rounds in a row keep no move, or the measurement budget or time limit is spent.
public struct PlanRefinement {
    /// A kept move and the measured step (median, ms) before and after it.
    public struct Step: Codable, Sendable {
        public var move: String
        public var before: Double
        public var after: Double
    }

    public struct Outcome: Sendable {
        /// The refined plan (the start itself when no move was kept).
        public var plan: ShardingPlan
        /// The refined plan's cost: per rank, the median over its measurements.
        public var cost: PlanCost
        /// The start's cost, measured the same way.
        public var start: PlanCost
        public var steps: [Step]
        /// Oracle measurements made.
        public var measurements: Int
        public var seconds: Double
        /// Why the search ended.
        public var stopped: String
    }

    public var task: PlanningTask
    public var predictor: any PlanCostModel
    /// Measures plans together (`CostOracle.costs(of:tables:)`), one cost per plan.
    public var measure: ([ShardingPlan]) throws -> [PlanCost]
    /// Plan measurements the search may make, confirmations included.
    public var budget: Int
    /// A measurement starts only when, at the mean time one has taken so far, it would end
    /// within this limit.
    public var timeLimit: Duration?
    /// Candidates measured per round: the best by estimate not measured before.
    public var width = 3
    /// Joint measurements of a promising candidate and the current plan before a move is kept.
    public var confirmations = 3
    /// Rounds in a row without a kept move before the search ends.
    public var patience = 2

    public init(task: PlanningTask, predictor: any PlanCostModel, budget: Int, timeLimit: Duration? = nil,
                measure: @escaping ([ShardingPlan]) throws -> [PlanCost]) throws(PlanError) {
        guard budget >= 1 else { throw PlanError("a refinement budget of \(budget) measurements; it must be at least 1") }
        if let timeLimit, timeLimit <= .zero { throw PlanError("a refinement time limit of \(timeLimit); it must be positive") }
        self.task = task
        self.predictor = predictor
        self.budget = budget
        self.timeLimit = timeLimit
        self.measure = measure
    }

    /// Refines `plan`, which must place `task`'s tables within its memory.
    public func refine(_ plan: ShardingPlan) throws -> Outcome {
        try plan.validate(tables: task.tables, ranks: task.ranks, memoryPerRank: task.memoryPerRank, optimizer: task.optimizer)
        let clock = ContinuousClock(), start = clock.now
        var measurements = 0
        func measured(_ plans: [ShardingPlan]) throws -> [PlanCost] {
            measurements += plans.count
            return try measure(plans)
        }
        /// Whether `count` more measurements fit the budget and, at the mean time of those so
        /// far, the time limit.
        func fits(_ count: Int) -> Bool {
            guard measurements + count <= budget else { return false }
            guard let timeLimit, measurements > 0 else { return true }
            let elapsed = clock.now - start
            return elapsed + elapsed / measurements * count <= timeLimit
        }
        var current = plan, currentCosts = try measured([plan])
        for _ in 1..<max(1, confirmations) where fits(1) { currentCosts += try measured([plan]) }
        let startCost = PlanCost.median(currentCosts)
        var steps: [Step] = [], seen: Set<[ShardingPlan.Placement]> = [plan.placements], idleRounds = 0
        var stopped = "no move helps"
        search: while true {
            // A round measures the current plan and at least one candidate.
            if measurements + 2 > budget { stopped = "budget of \(budget) measurements spent"; break }
            if let timeLimit, !fits(2) { stopped = "time limit of \(timeLimit) reached"; break }
            let cost = PlanCost.median(currentCosts)
            let candidates = estimated(moves(from: current, cost: cost), current: current, cost: cost)
                .filter { !seen.contains($0.plan.placements) }
            guard !candidates.isEmpty else { break }
            let round = Array(candidates.prefix((1...max(1, width)).last { fits(1 + $0) } ?? 1))
            for candidate in round { seen.insert(candidate.plan.placements) }
            let costs = try measured([current] + round.map(\.plan))
            currentCosts.append(costs[0])
            // The candidate cheapest against the current plan, confirmed by more joint measurements.
            if let best = costs.dropFirst().enumerated().min(by: { $0.element.total < $1.element.total }), best.element.total < costs[0].total {
                let k = best.offset
                var candidateCosts = [best.element], pairedCosts = [costs[0]]
                while candidateCosts.count < confirmations && fits(2) {
                    let pair = try measured([round[k].plan, current])
                    candidateCosts.append(pair[0])
                    pairedCosts.append(pair[1])
                }
                currentCosts += pairedCosts.dropFirst()
                let ratio = median(zip(candidateCosts, pairedCosts).map { $0.total / $1.total })
                let after = PlanCost.median(candidateCosts).total, before = PlanCost.median(pairedCosts).total
                if candidateCosts.count >= confirmations, ratio < 1 {
                    steps.append(Step(move: round[k].description, before: before, after: after))
                    current = round[k].plan
                    currentCosts = candidateCosts
                    idleRounds = 0
                    continue search
                }
            }
            idleRounds += 1
            if idleRounds >= patience { break }
        }
        current.algorithm = plan.algorithm + (steps.isEmpty ? "" : "+refined")
        return Outcome(plan: current, cost: PlanCost.median(currentCosts), start: startCost, steps: steps, measurements: measurements,
                       seconds: (clock.now - start).seconds, stopped: stopped)
    }

    /// A candidate plan and what it changed.
    struct Move {
        var plan: ShardingPlan
        var description: String
        /// The measured step the predictor's differences give it.
        var estimate = 0.0
    }

    /// `moves` that fit in memory, each with its estimate, cheapest first (ties by description,
    /// so the order is the same in every run).
    func estimated(_ moves: [Move], current: ShardingPlan, cost: PlanCost) -> [Move] {
        guard let predicted = try? predictor.cost(of: current, tables: task.tables) else { return [] }
        return moves.compactMap { move in
            guard (try? move.plan.validate(tables: task.tables, memoryPerRank: task.memoryPerRank, optimizer: task.optimizer)) != nil,
                  let trial = try? predictor.cost(of: move.plan, tables: task.tables) else { return nil }
            var move = move
            move.estimate = cost.ranks.indices.map { cost.ranks[$0].total + trial.ranks[$0].total - predicted.ranks[$0].total }.max() ?? 0
            return move
        }.sorted { ($0.estimate, $0.description) < ($1.estimate, $1.description) }
    }

    /// Every move that takes work off the slowest rank of `plan` (memory not yet checked).
    func moves(from plan: ShardingPlan, cost: PlanCost) -> [Move] {
        guard plan.ranks > 1, let slowest = cost.ranks.indices.max(by: { cost.ranks[$0].total < cost.ranks[$1].total }) else { return [] }
        let tables = Dictionary(uniqueKeysWithValues: task.tables.map { ($0.name, $0) })
        let others = (0..<plan.ranks).filter { $0 != slowest }
        let blockCost = blockCosts(plan)
        var moves: [Move] = []
        func adding(_ description: String, _ change: (inout [ShardingPlan.Placement]) -> Void) {
            var placements = plan.placements
            change(&placements)
            let fused = placements.map { placement in tables[placement.table].map(placement.fused) ?? placement }
            moves.append(Move(plan: ShardingPlan(ranks: plan.ranks, algorithm: plan.algorithm, placements: fused), description: description))
        }
        for (p, placement) in plan.placements.enumerated() {
            guard let table = tables[placement.table] else { continue }
            if placement.dataParallel {
                for rank in others {
                    adding("placed \(table.name) whole on rank \(rank) instead of on every rank") {
                        $0[p] = ShardingPlan.Placement(table: table.name, shards: [.init(columns: 0..<table.dim, rank: rank)])
                    }
                }
                continue
            }
            let mine = placement.shards.indices.filter { placement.shards[$0].rank == slowest }
            guard !mine.isEmpty else { continue }
            if let limit = task.dataParallelBytes, plan.ranks > 1, table.bytes(columns: table.dim, optimizer: task.optimizer) <= limit {
                adding("replicated \(table.name) on every rank") { $0[p] = .replicated(table.name) }
            }
            for s in mine {
                let shard = placement.shards[s], name = Self.name(table, shard)
                for rank in others {
                    adding("moved \(name) from rank \(slowest) to rank \(rank)") { $0[p].shards[s].rank = rank }
                    // Halves of at least 16 columns, as NeuroShard cuts: a lookup in a narrower piece still reads a 64-byte line.
                    let columns = shard.columns, half = columns.count / 2
                    if half >= 16 {
                        adding("split \(name) by columns, columns \(columns.lowerBound + half)..<\(columns.upperBound) to rank \(rank)") {
                            $0[p].shards[s].columns = columns.lowerBound..<columns.lowerBound + half
                            $0[p].shards.append(.init(columns: columns.lowerBound + half..<columns.upperBound, rows: shard.rows, rank: rank))
                        }
                    }
                    let rows = shard.rows ?? 0..<table.rows
                    if rows.count >= 2 {
                        let middle = rows.lowerBound + rows.count / 2
                        adding("split \(name) by rows, rows \(middle)..<\(rows.upperBound) to rank \(rank)") {
                            $0[p].shards[s].rows = rows.lowerBound..<middle
                            $0[p].shards.append(.init(columns: shard.columns, rows: middle..<rows.upperBound, rank: rank))
                        }
                    }
                    // Swaps with the blocks of `rank` nearest half this block's cost, which evens the pair best.
                    let target = blockCost[.init(table: placement.table, shard: shard)] ?? 0
                    let partners = blockCost.filter { $0.key.shard.rank == rank && $0.value < target && $0.key.table != placement.table }
                        .sorted { (abs($0.value - target / 2), $0.key.description) < (abs($1.value - target / 2), $1.key.description) }.prefix(3)
                    for partner in partners {
                        guard let q = plan.placements.firstIndex(where: { $0.table == partner.key.table }),
                              let r = plan.placements[q].shards.firstIndex(of: partner.key.shard), let other = tables[partner.key.table] else { continue }
                        adding("swapped \(name) on rank \(slowest) with \(Self.name(other, partner.key.shard)) on rank \(rank)") {
                            $0[p].shards[s].rank = rank
                            $0[q].shards[r].rank = slowest
                        }
                    }
                }
            }
        }
        return moves
    }

    /// A block of a plan, as the swaps name it.
    struct Block: Hashable, CustomStringConvertible {
        var table: String
        var shard: ShardingPlan.Shard
        var description: String { "\(table) \(shard.columns) \(shard.rows.map { "\($0)" } ?? "") \(shard.rank)" }
    }

    /// The predictor's forward and backward milliseconds of every block of `plan`, each alone.
    func blockCosts(_ plan: ShardingPlan) -> [Block: Double] {
        let index = Dictionary(uniqueKeysWithValues: task.tables.enumerated().map { ($1.name, $0) })
        let blocks = plan.placements.flatMap { placement in placement.shards.map { Block(table: placement.table, shard: $0) } }
            .filter { index[$0.table] != nil }
        let specs = blocks.map { block in
            let t = index[block.table]!, rows = block.shard.rows == 0..<task.tables[t].rows ? nil : block.shard.rows
            return [EmbeddingShardSpec(table: t, columns: block.shard.columns, rows: rows)]
        }
        let costs = predictor.compute(byRank: specs, tables: task.tables)
        return Dictionary(zip(blocks, costs.map { $0.forward + $0.backward }), uniquingKeysWith: { a, _ in a })
    }

    /// A block as reports name it: the table, and the columns and rows it holds when not all.
    static func name(_ table: TableSpec, _ shard: ShardingPlan.Shard) -> String {
        var name = table.name
        if shard.columns != 0..<table.dim { name += "[\(shard.columns.lowerBound)..<\(shard.columns.upperBound)]" }
        if let rows = shard.rows, rows != 0..<table.rows { name += "{rows \(rows.lowerBound)..<\(rows.upperBound)}" }
        return name
    }
}

extension ShardingPlan.Placement {
    /// This placement of `table` with the blocks one rank holds side by side (the same rows
    /// and adjoining columns, or the same columns and adjoining rows) fused into one, and a
    /// block of every row written without rows.
    public func fused(_ table: TableSpec) -> ShardingPlan.Placement {
        guard !dataParallel else { return self }
        var shards = self.shards.map { shard in
            var shard = shard
            if shard.rows == 0..<table.rows { shard.rows = nil }
            return shard
        }
        var fusedAny = true
        while fusedAny {
            fusedAny = false
            pairs: for i in shards.indices {
                for j in shards.indices where j != i && shards[j].rank == shards[i].rank {
                    let a = shards[i], b = shards[j]
                    var joined: ShardingPlan.Shard?
                    if a.rows == b.rows && a.columns.upperBound == b.columns.lowerBound {
                        joined = .init(columns: a.columns.lowerBound..<b.columns.upperBound, rows: a.rows, rank: a.rank)
                    } else if a.columns == b.columns, let ra = a.rows, let rb = b.rows, ra.upperBound == rb.lowerBound {
                        let rows = ra.lowerBound..<rb.upperBound
                        joined = .init(columns: a.columns, rows: rows == 0..<table.rows ? nil : rows, rank: a.rank)
                    }
                    guard let joined else { continue }
                    shards[i] = joined
                    shards.remove(at: j)
                    fusedAny = true
                    break pairs
                }
            }
        }
        shards.sort { ($0.columns.lowerBound, $0.rows?.lowerBound ?? 0) < ($1.columns.lowerBound, $1.rows?.lowerBound ?? 0) }
        return ShardingPlan.Placement(table: self.table, shards: shards)
    }
}
