import Foundation
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

    /// Part by part, the median of one rank's costs.
    public static func median(_ all: [RankCost]) -> RankCost {
        RankCost(forward: Models.median(all.map(\.forward)), backward: Models.median(all.map(\.backward)),
                 communication: Models.median(all.map(\.communication)))
    }
}

/// A plan's cost: each rank's, and the step's, which is the slowest rank's.
public struct PlanCost: Codable, Hashable, Sendable {
    public var ranks: [RankCost]

    public init(ranks: [RankCost]) { self.ranks = ranks }

    /// The oracle's repeat spread over plans measured more than once (`repeats`: each plan's
    /// measurements): per plan, the median over pairs of its measurements of their difference
    /// over their mean; then the median over plans. Nil when no plan was measured twice.
    public static func repeatSpread(_ repeats: [[Double]]) -> (median: Double, plans: Int)? {
        let spreads = repeats.filter { $0.count >= 2 }.map { values in
            Models.median(values.indices.flatMap { i in values[(i + 1)...].map { abs(values[i] - $0) / ((values[i] + $0) / 2) } })
        }
        return spreads.isEmpty ? nil : (Models.median(spreads), spreads.count)
    }

    /// The repeat spread of plans' costs relative to the other plans of their task: each
    /// measurement over the geometric mean of the task's other plans in the same pass. A drift
    /// of the machine's speed between passes cancels, so this is the noise that decides
    /// whether one plan beats another. `tasks`: per task, each plan's measurements by pass
    /// (plans measured in fewer passes count up to their last).
    public static func relativeSpread(_ tasks: [[[Double]]]) -> (median: Double, plans: Int)? {
        repeatSpread(tasks.flatMap { plans -> [[Double]] in
            guard plans.count >= 2 else { return [] }
            let passes = plans.map(\.count).min()!
            return plans.indices.map { i in
                (0..<passes).map { p in
                    let others = plans.indices.filter { $0 != i }
                    return plans[i][p] / exp(others.reduce(0) { $0 + log(plans[$1][p]) } / Double(others.count))
                }
            }
        })
    }

    /// Rank by rank and part by part, the median of measurements of one plan.
    public static func median(_ all: [PlanCost]) -> PlanCost {
        PlanCost(ranks: all[0].ranks.indices.map { r in RankCost.median(all.map { $0.ranks[r] }) })
    }

    /// Milliseconds per step: the slowest rank.
    public var total: Double { ranks.map(\.total).max() ?? 0 }
    /// Slowest over mean rank; 1 is perfect balance.
    public var imbalance: Double {
        let mean = ranks.map(\.total).reduce(0, +) / Double(max(ranks.count, 1))
        return mean > 0 ? total / mean : 1
    }
}

/// Anything that can price a plan: the measuring oracle, or a model that predicts. A model
/// supplies each rank's compute; communication always comes from the communication model.
public protocol PlanCostModel {
    var batchSize: Int { get }
    var communication: CommunicationCostModel { get }
    /// Forward and backward milliseconds of each rank's shard set over a global batch.
    func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)]
    /// Forward and backward milliseconds of one rank's replicas of `replicated` tables over its
    /// share (1 / `ranks`) of a global batch.
    func replicaCompute(_ replicated: [Int], tables: [TableSpec], ranks: Int) -> (forward: Double, backward: Double)
}

extension PlanCostModel {
    /// The replicas priced as one whole-table shard set over a global batch, scaled to a rank's
    /// share of it (the models here are linear in the batch).
    public func replicaCompute(_ replicated: [Int], tables: [TableSpec], ranks: Int) -> (forward: Double, backward: Double) {
        guard !replicated.isEmpty else { return (0, 0) }
        let whole = compute(byRank: [replicated.map { EmbeddingShardSpec(table: $0, columns: 0..<tables[$0].dim) }], tables: tables)[0]
        return (whole.forward / Double(ranks), whole.backward / Double(ranks))
    }

    /// Each rank's compute and communication for `plan`, after checking it covers `tables`:
    /// its shards, its replicas of the data-parallel tables, and their exchanges.
    public func cost(of plan: ShardingPlan, tables: [TableSpec]) throws(PlanError) -> PlanCost {
        try plan.validate(tables: tables)
        let byRank = plan.shardsByRank(tables: tables), replicated = plan.replicatedTables(tables: tables)
        let replicas = replicaCompute(replicated, tables: tables, ranks: plan.ranks)
        let comms = communication.communication(byRank: byRank, replicated: replicated, tables: tables, batchSize: batchSize)
        return PlanCost(ranks: zip(compute(byRank: byRank, tables: tables), comms).map { compute, comm in
            RankCost(forward: compute.forward + replicas.forward, backward: compute.backward + replicas.backward, communication: comm)
        })
    }
}
