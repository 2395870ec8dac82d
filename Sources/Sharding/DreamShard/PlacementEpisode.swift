import Models

/// One pass of DreamShard's MDP over a task: tables in descending predicted cost, each put on
/// a legal rank. What every step saw is kept, so training scores the same legal ranks that
/// sampling chose among.
struct PlacementEpisode {
    struct Step {
        var table: Int
        /// The ranks that could take the table, in rank order.
        var legal: [Int]
        /// The cost network's forward, backward and communication of each legal rank with the
        /// table added, in units of a balanced rank's load: (legal, 3).
        var costs: [Float]
        /// Index into `legal` of the chosen rank.
        var action: Int
    }

    let ranks: Int
    var steps: [Step] = []
    var rankOfTable: [Int]

    var tablesByRank: [[Int]] {
        var byRank = [[Int]](repeating: [], count: ranks)
        for (table, rank) in rankOfTable.enumerated() where rank >= 0 { byRank[rank].append(table) }
        return byRank
    }
}

/// A task prepared for placement with the current networks: each table's embedding in both,
/// the placement order, and the scales of the policy's inputs.
struct PlacementContext {
    let task: PlanningTask
    let model: DreamShardModel
    let features: [Float]
    let costEmbeddings: [Float]
    let policyEmbeddings: [Float]
    let order: [Int]
    let bytes: [Int]
    /// A balanced rank's predicted load: the cost features are in units of it.
    let balancedLoad: Double
    /// Ranks over tables: the policy's table sums are scaled by it.
    let tableSumScale: Float

    init(_ task: PlanningTask, model: DreamShardModel) {
        self.task = task
        self.model = model
        features = DreamShardFeatures.of(task, model.normalisation)
        costEmbeddings = model.costNetwork.embed(features)
        policyEmbeddings = model.policy.table.forward(features, rows: task.tables.count)
        let single = model.costNetwork.kernels(costEmbeddings, ranks: task.ranks).map(\.total)
        order = task.tables.indices.sorted { (single[$0], $1) > (single[$1], $0) }
        bytes = task.tables.indices.map { task.bytes(ofTable: $0) }
        tableSumScale = Float(task.ranks) / Float(task.tables.count)
        // The predicted cost of one rank holding every table, shared out.
        let all = groupSums(costEmbeddings, width: DreamShardCostNetwork.width, groups: [Array(task.tables.indices)])
        balancedLoad = max(model.costNetwork.kernels(all, ranks: task.ranks)[0].total / Double(task.ranks), 1e-3)
    }

    /// Places every table, asking `choose` for an index into each step's scores.
    func rollout(choose: ([Float]) -> Int) throws(PlanError) -> PlacementEpisode {
        let width = DreamShardCostNetwork.width, ranks = task.ranks
        var episode = PlacementEpisode(ranks: ranks, rankOfTable: [Int](repeating: -1, count: task.tables.count))
        var costSums = [Float](repeating: 0, count: ranks * width), policySums = costSums
        var used = [Int](repeating: 0, count: ranks)
        let bySize = task.tables.indices.sorted { (bytes[$0], $1) > (bytes[$1], $0) }
        var witness = pack(bySize, free: [Int](repeating: task.memoryPerRank, count: ranks))
        for table in order {
            let (legal, packings) = try legalRanks(for: table, used: used, placed: episode.rankOfTable, bySize: bySize, witness: witness)
            var trialCosts: [Float] = [], trialTables: [Float] = []
            for r in legal {
                for j in 0..<width {
                    trialCosts.append(costSums[r * width + j] + costEmbeddings[table * width + j])
                    trialTables.append(tableSumScale * (policySums[r * width + j] + policyEmbeddings[table * width + j]))
                }
            }
            let costs = model.costNetwork.kernels(trialCosts, ranks: ranks).flatMap { cost in
                [cost.forward, cost.backward, cost.communication].map { Float($0 / balancedLoad) }
            }
            let action = choose(model.policy.scores(tableSums: trialTables, costs: costs))
            let rank = legal[action]
            for j in 0..<width {
                costSums[rank * width + j] += costEmbeddings[table * width + j]
                policySums[rank * width + j] += policyEmbeddings[table * width + j]
            }
            used[rank] += bytes[table]
            episode.rankOfTable[table] = rank
            episode.steps.append(.init(table: table, legal: legal, costs: costs, action: action))
            witness = packings[action]
        }
        return episode
    }

    /// The ranks with room for `table` after which the tables still to place can still be
    /// packed into the room left, each with such a packing: a rank where first fit, largest
    /// first, packs them, and the rank `witness` (a packing found earlier) gives the table. So a
    /// placement that starts from a packable task never walks into a dead end. When no rank
    /// keeps a packing, every rank with room.
    func legalRanks(for table: Int, used: [Int], placed: [Int], bySize: [Int],
                    witness: [Int]?) throws(PlanError) -> (ranks: [Int], packings: [[Int]?]) {
        let roomy = (0..<task.ranks).filter { used[$0] + bytes[table] <= task.memoryPerRank }
        guard !roomy.isEmpty else {
            throw .noRoom(table: task.tables[table].name, bytes: bytes[table], memoryPerRank: task.memoryPerRank, usedByRank: used)
        }
        let remaining = bySize.filter { $0 != table && placed[$0] < 0 }
        var ranks: [Int] = [], packings: [[Int]?] = []
        for rank in roomy {
            var free = used.map { task.memoryPerRank - $0 }
            free[rank] -= bytes[table]
            if let packing = pack(remaining, free: free) {
                ranks.append(rank)
                packings.append(packing)
            } else if let witness, witness[table] == rank {
                ranks.append(rank)
                packings.append(witness)
            }
        }
        return ranks.isEmpty ? (roomy, roomy.map { _ in nil }) : (ranks, packings)
    }

    /// First fit of `tables` (largest first) into `free` bytes per rank: each table's rank, or
    /// nil when one does not fit.
    func pack(_ tables: [Int], free: [Int]) -> [Int]? {
        var free = free, packing = [Int](repeating: -1, count: task.tables.count)
        for table in tables {
            guard let r = free.firstIndex(where: { $0 >= bytes[table] }) else { return nil }
            free[r] -= bytes[table]
            packing[table] = r
        }
        return packing
    }

    /// The cost network's predicted step cost of a finished episode, by its overall head or as
    /// the slowest rank's forward + backward + communication.
    func predictedCost(of episode: PlacementEpisode, by estimate: DreamShardTraining.StepCost) -> Double {
        let sums = groupSums(costEmbeddings, width: DreamShardCostNetwork.width, groups: episode.tablesByRank)
        switch estimate {
        case .overallHead: return model.costNetwork.overall([sums])[0]
        case .slowestRank: return model.costNetwork.kernels(sums, ranks: task.ranks).map(\.total).max() ?? 0
        }
    }
}
