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

/// Anything that can price a plan: the measuring oracle, or a model that predicts.
public protocol PlanCostModel {
    func cost(of plan: ShardingPlan, tables: [TableSpec]) throws(PlanError) -> PlanCost
}
