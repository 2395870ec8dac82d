/// The planners users can name with `--algo`.
public enum PlannerCatalog {
    /// The learned planner first, then the heuristic baselines.
    public static let names = ["neuroshard"] + heuristics
    /// The baselines both papers compare against.
    public static let heuristics = ["torchrec-perf"] + GreedyPlanner.Proxy.allCases.reversed().map { "greedy-" + $0.rawValue }
        + ["round-robin", "random"]

    /// The planner called `name`; `costModel` is asked for only when NeuroShard is.
    public static func planner(named name: String, seed: UInt64, communication: AlltoallCostModel,
                               costModel: () throws(PlanError) -> NeuroShardCostModel) throws(PlanError) -> any Planner {
        switch name {
        case "neuroshard": return NeuroShardPlanner(model: try costModel(), communication: communication)
        case "torchrec-perf": return TorchRecPerfPlanner(communication: communication)
        case "round-robin": return RoundRobinPlanner()
        case "random": return RandomPlanner(seed: seed)
        default:
            if name.hasPrefix("greedy-"), let proxy = GreedyPlanner.Proxy(rawValue: String(name.dropFirst(7))) { return GreedyPlanner(proxy) }
            throw PlanError("no planner '\(name)' (\(names.joined(separator: ", ")))")
        }
    }
}
