import Foundation
import Models

/// A trained DreamShard: the cost network and the policy, with how they were trained.
public final class DreamShardModel {
    /// 2: the communication and overall heads read the rank count.
    public static let formatVersion = 2

    /// What the model was trained on, kept in its file.
    public struct Provenance: Codable, Sendable {
        /// The rank counts of the training tasks.
        public var rankCounts: [Int]
        public var tasks: Int
        public var iterations: Int
        public var measuredPlans: Int
        public var seconds: Double
        /// The machine its plans were measured on (nil: a model from before fingerprints).
        public var hardware: HardwareFingerprint?
        /// Shard sets of `hardware` its cost network was fine-tuned on by `costs calibrate`
        /// (nil: as trained).
        public var calibrationSets: Int?
    }

    let normalisation: DreamShardFeatures.Normalisation
    /// The global batch the training costs were measured at.
    public let batchSize: Int
    let costNetwork: DreamShardCostNetwork
    let policy: DreamShardPolicy
    public internal(set) var provenance: Provenance?

    init(normalisation: DreamShardFeatures.Normalisation, batchSize: Int, seed: UInt64) {
        self.normalisation = normalisation
        self.batchSize = batchSize
        costNetwork = DreamShardCostNetwork(seed: seed)
        policy = DreamShardPolicy(seed: seed)
    }

    /// Places `task`'s tables with the policy's most likely action at every step.
    func place(_ task: PlanningTask) throws(PlanError) -> PlacementEpisode {
        try PlacementContext(task, model: self).rollout { scores in scores.indices.max { scores[$0] < scores[$1] }! }
    }

    // MARK: - Files

    private struct File: Codable {
        var formatVersion: Int
        var features: String
        var normalisation: DreamShardFeatures.Normalisation
        var batchSize: Int
        var costNetwork: [Float]
        var policy: [Float]
        var provenance: Provenance?
    }

    public func write(to path: String) throws(PlanError) {
        let file = File(formatVersion: Self.formatVersion, features: DreamShardFeatures.signature, normalisation: normalisation, batchSize: batchSize,
                        costNetwork: costNetwork.parameters.valueArray, policy: policy.parameters.valueArray, provenance: provenance)
        do { try JSONFile.write(file, to: path) } catch { throw PlanError(error.description) }
    }

    public static func read(_ path: String) throws(PlanError) -> DreamShardModel {
        let file = try VersionedFile.read(File.self, from: path, kind: "DreamShard model", formatVersion: formatVersion)
        guard file.features == DreamShardFeatures.signature else {
            throw PlanError("\(path): the DreamShard model was trained on other features (\(file.features)); this build uses \(DreamShardFeatures.signature)")
        }
        guard file.normalisation.mean.count == 3, file.normalisation.std.count == 3, file.normalisation.std.allSatisfy({ $0 > 0 }) else {
            throw PlanError("\(path): the feature normalisation needs 3 means and 3 positive spreads")
        }
        guard file.batchSize > 0 else { throw PlanError("\(path): batch size \(file.batchSize); it must be positive") }
        let model = DreamShardModel(normalisation: file.normalisation, batchSize: file.batchSize, seed: 0)
        for (name, values, buffer) in [("cost network", file.costNetwork, model.costNetwork.parameters), ("policy", file.policy, model.policy.parameters)] {
            guard values.count == buffer.count else {
                throw PlanError("\(path): \(values.count) \(name) parameters; this build's \(name) has \(buffer.count)")
            }
            guard values.allSatisfy(\.isFinite) else { throw PlanError("\(path): the \(name) has parameters that are not finite numbers") }
            values.withUnsafeBufferPointer { buffer.values.update(from: $0.baseAddress!, count: $0.count) }
        }
        model.provenance = file.provenance
        return model
    }

    /// The model trained on this machine that ships with MPITrain.
    public static func shipped() throws(PlanError) -> DreamShardModel {
        try read(ShippedResources.file("dreamshard-model", kind: "DreamShard model"))
    }
}

/// DreamShard's placement (Zha et al., NeurIPS 2022): tables in descending predicted cost,
/// each to the legal rank the policy scores highest. Table-wise only.
public struct DreamShardPlanner: Planner {
    public let name = "dreamshard"
    public let model: DreamShardModel
    /// Prices replicas' gradient sums when the task allows data-parallel tables (none without it).
    public let communication: CommunicationCostModel?

    public init(model: DreamShardModel, communication: CommunicationCostModel? = nil) {
        self.model = model
        self.communication = communication
    }

    public func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan {
        guard task.ranks >= 1 else { throw PlanError("a task needs at least 1 rank, found \(task.ranks)") }
        guard !task.tables.isEmpty else { throw PlanError("a task needs at least 1 table") }
        let total = task.tables.indices.reduce(0) { $0 + task.bytes(ofTable: $1) }
        guard total <= task.ranks * task.memoryPerRank else {
            throw PlanError("the \(task.tables.count) tables need \(ByteCount(total)); \(task.ranks) ranks of "
                            + "\(ByteCount(task.memoryPerRank)) hold \(ByteCount(task.ranks * task.memoryPerRank))")
        }
        // A table no rank can hold is placed as row blocks, each a table to the policy.
        let plan = try RowBlocks.plan(task) { blockTask, _ throws(PlanError) in
            ShardingPlan(tables: blockTask.tables, rankOfTable: try model.place(blockTask).rankOfTable, ranks: task.ranks, algorithm: name)
        }
        guard let communication else { return plan }
        return plan.replicatingWherePredictedCheaper(task, predictor: DreamShardPrediction(model: model, communication: communication,
                                                                                          batchSize: task.batchSize, optimizer: task.optimizer))
    }
}

extension DreamShardModel {
    /// The cost network's prediction for `plan` on `task`: each rank's forward, backward and
    /// communication, and the overall head's step cost.
    public func predict(_ plan: ShardingPlan, task: PlanningTask) throws(PlanError) -> (ranks: [RankCost], overall: Double) {
        try plan.validate(tables: task.tables, ranks: task.ranks)
        let sums = rankSums(plan.shardsByRank(tables: task.tables), task: task)
        return (costNetwork.kernels(sums, ranks: task.ranks), costNetwork.overall([sums])[0])
    }

    /// Each rank's summed table embeddings in the cost network, (ranks, width); a column
    /// piece counts as its whole table (DreamShard places tables whole).
    func rankSums(_ byRank: [[EmbeddingShardSpec]], task: PlanningTask) -> [Float] {
        let embeddings = costNetwork.embed(DreamShardFeatures.of(task, normalisation))
        return groupSums(embeddings, width: DreamShardCostNetwork.width, groups: byRank.map { Array(Set($0.map(\.table))).sorted() })
    }
}

/// The cost network's forward and backward milliseconds of each rank, scaled linearly from the
/// batch it was trained at, for plan reports; communication, as for every plan cost model,
/// comes from the calibrated all-to-all model.
public struct DreamShardPrediction: PlanCostModel {
    public let model: DreamShardModel
    public let communication: CommunicationCostModel
    public let batchSize: Int
    public let optimizer: EmbeddingOptimizer

    public init(model: DreamShardModel, communication: CommunicationCostModel, batchSize: Int, optimizer: EmbeddingOptimizer) {
        self.model = model
        self.communication = communication
        self.batchSize = batchSize
        self.optimizer = optimizer
    }

    /// Each shard is fed to the network as a table of its own (its block), so column and row
    /// cuts are priced by the part of the table they hold.
    public func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)] {
        let blocks = byRank.joined().map { tables[$0.table].block($0) }
        var next = 0
        let byBlock = byRank.map { shards in shards.map { shard in
            defer { next += 1 }
            return EmbeddingShardSpec(table: next, columns: 0..<shard.columns.count)
        } }
        let task = PlanningTask(tables: blocks, ranks: byRank.count, memoryPerRank: 0, batchSize: batchSize, optimizer: optimizer)
        let sums = model.rankSums(byBlock, task: task)
        let scale = Double(batchSize) / Double(model.batchSize)
        return model.costNetwork.kernels(sums, ranks: byRank.count).map { (max($0.forward, 0) * scale, max($0.backward, 0) * scale) }
    }
}
