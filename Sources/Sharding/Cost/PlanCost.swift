import Models

/// One rank's share of a training step's embedding work, in milliseconds.
public struct RankCost: Codable, Hashable, Sendable {
    public var forward: Double
    public var backward: Double
    public var communication: Double

    public init(forward: Double, backward: Double, communication: Double) {
        self.forward = forward
        self.backward = backward
        self.communication = communication
    }

    public var total: Double { forward + backward + communication }
}

/// A plan's cost: each rank's, and the step's, which is the slowest rank's.
public struct PlanCost: Codable, Hashable, Sendable {
    public var ranks: [RankCost]

    public init(ranks: [RankCost]) { self.ranks = ranks }

    /// Milliseconds per step: the slowest rank.
    public var total: Double { ranks.map(\.total).max() ?? 0 }
    /// Slowest over mean rank; 1 is perfect balance.
    public var imbalance: Double {
        let mean = ranks.map(\.total).reduce(0, +) / Double(max(ranks.count, 1))
        return mean > 0 ? total / mean : 1
    }
}

/// Anything that can price a plan: the measuring oracle, or a model that predicts. A model
/// supplies each rank's compute; communication always comes from the all-to-all model.
public protocol PlanCostModel {
    var batchSize: Int { get }
    var communication: AlltoallCostModel { get }
    /// Forward and backward milliseconds of each rank's shard set over a global batch.
    func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)]
}

extension PlanCostModel {
    /// Each rank's compute and communication for `plan`, after checking it covers `tables`.
    public func cost(of plan: ShardingPlan, tables: [TableSpec]) throws(PlanError) -> PlanCost {
        try plan.validate(tables: tables)
        let byRank = plan.shardsByRank(tables: tables)
        let comms = communication.communication(byRank: byRank, tables: tables, batchSize: batchSize)
        return PlanCost(ranks: zip(compute(byRank: byRank, tables: tables), comms).map { compute, comm in
            RankCost(forward: compute.forward, backward: compute.backward, communication: comm)
        })
    }
}
