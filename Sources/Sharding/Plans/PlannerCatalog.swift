import Models

/// The planners users can name with `--algo`.
public enum PlannerCatalog {
    /// The learned planners first, then the heuristic baselines.
    public static let names = ["dreamshard", "neuroshard"] + heuristics
    /// The baselines both papers compare against.
    public static let heuristics = ["torchrec-perf"] + GreedyPlanner.Proxy.allCases.reversed().map { "greedy-" + $0.rawValue }
        + ["round-robin", "random"]

    /// The planner called `name`; a learned planner's model is loaded only when it is named.
    public static func planner(named name: String, seed: UInt64, communication: CommunicationCostModel,
                               models: LearnedModels) throws(PlanError) -> any Planner {
        switch name {
        case "dreamshard": return DreamShardPlanner(model: try models.dreamShard(), communication: communication)
        case "neuroshard": return NeuroShardPlanner(model: try models.neuroShard(), communication: communication)
        case "torchrec-perf": return TorchRecPerfPlanner(communication: communication)
        case "round-robin": return RoundRobinPlanner()
        case "random": return RandomPlanner(seed: seed)
        default:
            if name.hasPrefix("greedy-"), let proxy = GreedyPlanner.Proxy(rawValue: String(name.dropFirst(7))) { return GreedyPlanner(proxy) }
            throw PlanError("no planner '\(name)' (\(names.joined(separator: ", ")))")
        }
    }
}

/// Where the learned planners find their models.
public struct LearnedModels {
    public var neuroShard: () throws(PlanError) -> NeuroShardCostModel
    public var dreamShard: () throws(PlanError) -> DreamShardModel

    public init(neuroShard: @escaping () throws(PlanError) -> NeuroShardCostModel,
                dreamShard: @escaping () throws(PlanError) -> DreamShardModel) {
        self.neuroShard = neuroShard
        self.dreamShard = dreamShard
    }

    /// The models trained on this machine that ship with MPITrain.
    public static var shipped: LearnedModels { LearnedModels(neuroShard: NeuroShardCostModel.shipped, dreamShard: DreamShardModel.shipped) }
}

extension LearnedModels {
    /// The model that predicts plan costs in reports: DreamShard's cost network for its own
    /// plans; otherwise NeuroShard's, or, when `fallBack` and no NeuroShard model can be
    /// loaded, the analytic estimate. Returns the model and its name for reports.
    public func predictor(batch: Int, communication: CommunicationCostModel, planner: String?, optimizer: EmbeddingOptimizer,
                          fallBack: Bool) throws(PlanError) -> (model: any PlanCostModel, source: String) {
        if planner == "dreamshard" {
            return (DreamShardPrediction(model: try dreamShard(), communication: communication, batchSize: batch, optimizer: optimizer),
                    "DreamShard cost network")
        }
        do {
            return (NeuroShardPrediction(model: try neuroShard(), communication: communication, batchSize: batch), "NeuroShard cost model")
        } catch where fallBack {
            return (AnalyticCostModel(batchSize: batch, communication: communication), "analytic estimate")
        }
    }
}
