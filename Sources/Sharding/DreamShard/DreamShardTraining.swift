import Foundation
import Models

/// DreamShard's outer loop: each iteration measures plans sampled from the current policy (with
/// the cost oracle, or any plan cost model), fits the cost network to every measurement so
/// far, then trains the policy with REINFORCE on rewards from the cost network alone. Defaults
/// are the paper's code's.
public struct DreamShardTraining: Sendable {
    public var iterations = 10
    /// Plans sampled and measured per iteration.
    public var measuredPlans = 10
    /// Cost-network mini-batches per iteration, and their size (ranks and plans each).
    public var costSteps = 300
    public var costBatch = 64
    /// Policy updates per iteration, and the episodes (on one task) each averages over.
    public var policyBatches = 10
    public var episodesPerBatch = 10
    public var entropyWeight: Float = 0.001
    /// What the policy's reward (minus the step cost) is read from.
    public var reward = StepCost.overallHead
    /// Adam's step, decayed linearly to zero over the iterations.
    public var learningRate: Float = 5e-4
    public var seed: UInt64 = 0

    public init() {}

    /// The cost network's estimate of a placement's step cost: the paper's overall head, or the
    /// slowest rank by the three per-rank heads (trained on every rank of every measured plan).
    public enum StepCost: String, Sendable, CaseIterable {
        case overallHead = "overall-head"
        case slowestRank = "slowest-rank"
    }

    /// One iteration's figures.
    public struct Progress: Sendable {
        public var iteration: Int
        /// Mean measured cost of this iteration's sampled plans, ms.
        public var meanMeasured: Double
        /// Mean of the last cost-network step's four squared errors.
        public var costLoss: Double
        /// Mean predicted cost of the policy's sampled episodes, ms.
        public var meanPredicted: Double
        public var entropy: Double
        /// Episodes (measured or not) that found no legal rank for some table.
        public var deadEnds: Int
    }

    public func train(tasks: [PlanningTask], measure: any PlanCostModel,
                      progress: (Progress) -> Void = { _ in }) throws(PlanError) -> DreamShardModel {
        guard !tasks.isEmpty else { throw PlanError("DreamShard needs at least one training task") }
        let start = ContinuousClock.now
        let model = DreamShardModel(normalisation: .init(fitting: tasks), batchSize: tasks[0].batchSize, seed: seed)
        let (costNetwork, policy) = (model.costNetwork, model.policy)
        var costAdam = Adam(parameterCount: costNetwork.parameters.count, learningRate: learningRate)
        var policyAdam = Adam(parameterCount: policy.parameters.count, learningRate: learningRate)
        var random = SplitMix64(seed: seed, stream: "dreamshard-training")
        let features = tasks.map { DreamShardFeatures.of($0, model.normalisation) }
        var kernels: [DreamShardCostNetwork.KernelSample] = [], plans: [DreamShardCostNetwork.PlanSample] = []
        for iteration in 0..<iterations {
            let rate = learningRate * (1 - Float(iteration) / Float(iterations))
            costAdam.learningRate = rate
            policyAdam.learningRate = rate
            var deadEnds = 0
            // Measure plans the current policy samples.
            var measured: [Double] = []
            for _ in 0..<measuredPlans {
                let t = random.nextInt(below: tasks.count)
                let context = PlacementContext(tasks[t], model: model)
                guard let episode = try? context.rollout(choose: { Self.sample($0, &random) }) else {
                    deadEnds += 1
                    continue
                }
                let plan = ShardingPlan(tables: tasks[t].tables, rankOfTable: episode.rankOfTable, ranks: tasks[t].ranks, algorithm: "dreamshard")
                let cost = try measure.cost(of: plan, tables: tasks[t].tables)
                let byRank = episode.tablesByRank
                for (r, rankCost) in cost.ranks.enumerated() {
                    kernels.append(.init(task: t, tables: byRank[r], ranks: tasks[t].ranks, cost: rankCost))
                }
                plans.append(.init(task: t, tablesByRank: byRank, cost: cost.total))
                measured.append(cost.total)
            }
            // Fit the cost network to everything measured so far.
            var costLoss = 0.0
            if !plans.isEmpty {
                for _ in 0..<costSteps {
                    let kernelBatch = (0..<costBatch).map { _ in kernels[random.nextInt(below: kernels.count)] }
                    let planBatch = (0..<costBatch).map { _ in plans[random.nextInt(below: plans.count)] }
                    costLoss = costNetwork.trainStep(kernels: kernelBatch, plans: planBatch, features: features, adam: &costAdam)
                        .reduce(0, +) / 4
                }
            }
            // Train the policy on the cost network's rewards.
            var predicted: [Double] = [], entropy = 0.0
            for _ in 0..<policyBatches {
                let t = random.nextInt(below: tasks.count)
                let context = PlacementContext(tasks[t], model: model)
                var episodes: [PlacementEpisode] = [], rewards: [Double] = []
                for _ in 0..<episodesPerBatch {
                    guard let episode = try? context.rollout(choose: { Self.sample($0, &random) }) else {
                        deadEnds += 1
                        continue
                    }
                    let cost = context.predictedCost(of: episode, by: reward)
                    episodes.append(episode)
                    rewards.append(-cost)
                    predicted.append(cost)
                }
                guard episodes.count > 1 else { continue }
                entropy = policy.reinforce(episodes, rewards: rewards, context: context, entropyWeight: entropyWeight, adam: &policyAdam)
            }
            progress(Progress(iteration: iteration, meanMeasured: measured.isEmpty ? .nan : measured.reduce(0, +) / Double(measured.count),
                              costLoss: costLoss, meanPredicted: predicted.isEmpty ? .nan : predicted.reduce(0, +) / Double(predicted.count),
                              entropy: entropy, deadEnds: deadEnds))
        }
        model.provenance = .init(rankCounts: Array(Set(tasks.map(\.ranks))).sorted(), tasks: tasks.count, iterations: iterations,
                                 measuredPlans: plans.count, seconds: (ContinuousClock.now - start).seconds, hardware: .measured())
        return model
    }

    /// An index drawn from the softmax of `scores`.
    static func sample(_ scores: [Float], _ random: inout SplitMix64) -> Int {
        let p = DreamShardPolicy.softmax(scores[...])
        var u = Float(random.nextDouble())
        for (i, pi) in p.enumerated() {
            u -= pi
            if u < 0 { return i }
        }
        return p.count - 1
    }
}
