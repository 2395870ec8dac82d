import Models

/// Moves a DreamShard model to the machine it runs on: fine-tunes its cost network, from its
/// weights at a low rate, on the shard sets `costs calibrate` measured there. The policy is
/// left as it is: it reads the cost network's predictions of each legal rank, so its
/// placements follow the network. The measured sets become plans as DreamShard's training
/// measures them: each rank one set, its compute as measured and its communication from the
/// all-to-all calibration, grouped at random into plans of 2, 4 and 8 ranks (one set's compute
/// does not depend on the ranks beside it), so every rank-aware head sees every rank count.
public struct DreamShardCalibration {
    /// How close the network comes to held-out measurements.
    public struct Errors: Sendable {
        /// Median per-rank error of forward plus backward, over all held-out sets and over
        /// their costliest quarter.
        public var perRank: Double
        public var costliest: Double
        /// Median error of the overall head's step cost (what the policy's reward reads) on
        /// plans made of the held-out sets.
        public var step: Double
    }

    public struct Outcome {
        public var model: DreamShardModel
        public var tuningSets: Int
        public var before: Errors
        public var after: Errors
    }

    /// Cost-network mini-batches, and their size (ranks and plans each), as in training.
    public var steps = 600
    public var batch = 64
    /// Adam's step, decayed linearly to zero: a third of training's.
    public var learningRate: Float = 1.5e-4
    public var rankCounts = [2, 4, 8]
    public var seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// Fine-tunes `model` (changed in place and returned) on `tuning` sets measured at
    /// `batchSize` on the machine of `hardware`, and reports its errors before and after on
    /// `heldOut` ones.
    public func run(_ model: DreamShardModel, tuning: [NeuroShardCostModel.Record], heldOut: [NeuroShardCostModel.Record],
                    batchSize: Int, hardware: HardwareFingerprint?, communication: CommunicationCostModel) throws(PlanError) -> Outcome {
        guard !tuning.isEmpty, !heldOut.isEmpty else { throw PlanError("DreamShard calibration needs tuning and held-out shard sets") }
        let training = Plans(tuning, model: model, batchSize: batchSize, communication: communication, rankCounts: rankCounts, seed: seed)
        let judged = Plans(heldOut, model: model, batchSize: batchSize, communication: communication, rankCounts: rankCounts, seed: seed)
        guard !training.plans.isEmpty, !judged.plans.isEmpty else {
            throw PlanError("DreamShard calibration needs at least \(rankCounts.min() ?? 2) tuning and held-out shard sets to make plans of")
        }
        let before = errors(of: model, on: heldOut, plans: judged, batchSize: batchSize)
        let network = model.costNetwork
        var adam = Adam(parameterCount: network.parameters.count, learningRate: learningRate)
        var random = SplitMix64(seed: seed, stream: "dreamshard-calibration")
        for step in 0..<steps {
            adam.learningRate = learningRate * (1 - Float(step) / Float(steps))
            let kernels = (0..<batch).map { _ in training.kernels[random.nextInt(below: training.kernels.count)] }
            let plans = (0..<batch).map { _ in training.plans[random.nextInt(below: training.plans.count)] }
            _ = network.trainStep(kernels: kernels, plans: plans, features: training.features, adam: &adam)
        }
        model.provenance?.calibrationSets = tuning.count
        model.provenance?.hardware = hardware
        return Outcome(model: model, tuningSets: tuning.count, before: before,
                       after: errors(of: model, on: heldOut, plans: judged, batchSize: batchSize))
    }

    /// The network's errors on `records` measured at `batchSize`, one rank each, and on the
    /// step costs of `plans` made of them.
    func errors(of model: DreamShardModel, on records: [NeuroShardCostModel.Record], plans: Plans, batchSize: Int) -> Errors {
        let ranks = Self.errors(of: model, on: records, batchSize: batchSize)
        return Errors(perRank: ranks.all, costliest: ranks.costliest, step: plans.stepError(of: model))
    }

    /// The network's median per-rank error (forward plus backward) on `records` measured at
    /// `batchSize`, and on the costliest quarter of them.
    public static func errors(of model: DreamShardModel, on records: [NeuroShardCostModel.Record], batchSize: Int) -> (all: Double, costliest: Double) {
        let prediction = DreamShardPrediction(model: model, communication: CommunicationCostModel(tables: [:]), batchSize: batchSize, optimizer: .sgd)
        return CostCalibration.medianErrors(records.map { record in
            let predicted = prediction.compute(byRank: [record.shards], tables: record.tables)[0]
            return (record.forward + record.backward, predicted.forward + predicted.backward)
        })
    }

    /// Measured sets as the cost network's training samples: one task per plan, whose tables
    /// are the sets' pieces (each block a table, as DreamShard prices pieces).
    struct Plans {
        var features: [[Float]] = []
        var kernels: [DreamShardCostNetwork.KernelSample] = []
        var plans: [DreamShardCostNetwork.PlanSample] = []
        /// The blocks of each plan's ranks, for judging the network.
        var tasks: [PlanningTask] = []

        init(_ records: [NeuroShardCostModel.Record], model: DreamShardModel, batchSize: Int,
             communication: CommunicationCostModel, rankCounts: [Int], seed: UInt64) {
            var random = SplitMix64(seed: seed, stream: "dreamshard-calibration-plans")
            // Costs are linear in the batch: bring the sets to the model's.
            let scale = Double(model.batchSize) / Double(batchSize)
            for ranks in rankCounts where ranks <= records.count {
                let order = records.indices.shuffled(using: &random)
                for first in stride(from: 0, through: order.count - ranks, by: ranks) {
                    let group = order[first ..< first + ranks].map { records[$0] }
                    let blocks = group.flatMap { record in zip(record.tables, record.shards).map { $0.block($1) } }
                    let task = PlanningTask(tables: blocks, ranks: ranks, memoryPerRank: 0, batchSize: model.batchSize)
                    var byRank: [[Int]] = [], next = 0
                    for record in group {
                        byRank.append(Array(next ..< next + record.tables.count))
                        next += record.tables.count
                    }
                    let shards = byRank.map { $0.map { EmbeddingShardSpec(table: $0, columns: 0..<blocks[$0].dim) } }
                    let communications = communication.communication(byRank: shards, tables: blocks, batchSize: model.batchSize)
                    let costs = zip(group, communications).map { record, comm in
                        RankCost(forward: record.forward * scale, backward: record.backward * scale, communication: comm)
                    }
                    for (tables, cost) in zip(byRank, costs) {
                        kernels.append(.init(task: tasks.count, tables: tables, ranks: ranks, cost: cost))
                    }
                    plans.append(.init(task: tasks.count, tablesByRank: byRank, cost: PlanCost(ranks: costs).total))
                    features.append(DreamShardFeatures.of(task, model.normalisation))
                    tasks.append(task)
                }
            }
        }

        /// The network's median error on these plans' step costs.
        func stepError(of model: DreamShardModel) -> Double {
            median(plans.map { plan in
                let shards = plan.tablesByRank.map { $0.map { EmbeddingShardSpec(table: $0, columns: 0..<tasks[plan.task].tables[$0].dim) } }
                let predicted = model.costNetwork.overall([model.rankSums(shards, task: tasks[plan.task])])[0]
                return abs(predicted - plan.cost) / plan.cost
            })
        }
    }
}
