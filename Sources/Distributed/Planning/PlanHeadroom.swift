import Foundation
import Models
import Sharding

/// How far the planners are from the best plan a measured search finds: per task, every
/// planner plans, the cheapest plan by the oracle is refined (`PlanRefinement`) until no move
/// helps (`patience` rounds in a row keep none) or `budget` measurements are spent, and then
/// every planner's plan and the plan found are measured again together, in `repeats` passes
/// (`CostOracle.measureInPasses`), so their medians compare.
public struct PlanHeadroom {
    /// One task's plans and the plan found.
    public struct Task: Codable, Sendable {
        public var task: Int
        /// Per planner (nil: infeasible), then the plan found: median ms of the final passes.
        public var costs: [String: Double?]
        /// Every measurement of the final passes, of the plans that have them.
        public var passes: [String: [Double]]
        /// The planner whose plan the search started from.
        public var start: String
        public var found: ShardingPlan
        public var steps: [PlanRefinement.Step]
        /// Oracle measurements of the search, and its seconds.
        public var measurements: Int
        public var seconds: Double
        public var stopped: String
    }

    /// The planners, oracle and predictor (its trainer is not used).
    public var evaluation: PlanEvaluation
    public var budget: Int
    /// Rounds in a row without a kept move before the search ends (see `PlanRefinement`).
    public var patience: Int

    public init(evaluation: PlanEvaluation, budget: Int, patience: Int = 4) throws(PlanError) {
        guard budget >= 1 else { throw PlanError("a headroom budget of \(budget) measurements; it must be at least 1") }
        guard patience >= 1 else { throw PlanError("a headroom patience of \(patience) rounds; it must be at least 1") }
        self.patience = patience
        var evaluation = evaluation
        evaluation.trainer = nil
        evaluation.refining = nil
        self.evaluation = evaluation
        self.budget = budget
    }

    /// The name of the plan found among a task's costs.
    public static let found = "found"

    public func run(_ task: PlanningTask, index: Int) throws -> Task {
        let planned = try evaluation.evaluate(task, index: index)
        guard let best = planned.filter({ $0.plan != nil }).min(by: { $0.measuredMilliseconds! < $1.measuredMilliseconds! }), let start = best.plan else {
            throw PlanError("task \(index + 1): no planner places its tables (\(planned.first?.failure ?? "no planners"))")
        }
        let oracle = try evaluation.oracle(task), predictor = try evaluation.predictor(task)
        var refinement = try PlanRefinement(task: task, predictor: predictor, budget: budget) { try oracle.costs(of: $0, tables: task.tables) }
        refinement.patience = patience
        let outcome = try refinement.refine(start)
        // The final passes: every plan, measured together.
        let plans = planned.map { ($0.algorithm, $0.plan) } + [(Self.found, outcome.plan as ShardingPlan?)]
        var measured = [[Double]](repeating: [], count: plans.count)
        try oracle.measureInPasses(plans.map(\.1), tables: task.tables, passes: evaluation.repeats) { i, costs in
            measured[i].append(costs[oracle.clock]!.total)
        }
        return Task(task: index, costs: Dictionary(uniqueKeysWithValues: plans.indices.map { (plans[$0].0, measured[$0].isEmpty ? nil : median(measured[$0])) }),
                    passes: Dictionary(uniqueKeysWithValues: plans.indices.filter { !measured[$0].isEmpty }.map { (plans[$0].0, measured[$0]) }),
                    start: best.algorithm, found: outcome.plan, steps: outcome.steps, measurements: outcome.measurements,
                    seconds: outcome.seconds, stopped: outcome.stopped)
    }
}

/// Per planner over headroom tasks: its distance from the plan found, and the share of the
/// reachable gain it captures, where the gain is the found plan's over the best heuristic.
/// Means are over the tasks every planner placed; the best heuristic is the one with the
/// least mean there, as in `PlannerComparison`.
public struct HeadroomSummary: Sendable {
    public struct Planner: Sendable {
        public var name: String
        public var mean: Double
        /// mean / the found plans' mean - 1.
        public var overFound: Double
        /// (best heuristic's mean - mean) / (best heuristic's mean - the found plans' mean); nil
        /// when the search found nothing below the best heuristic.
        public var captured: Double?
    }

    public var planners: [Planner]
    public var found: Double
    public var bestHeuristic: String?
    /// 1 - the found plans' mean / the best heuristic's.
    public var headroom: Double?
    /// Tasks every planner placed.
    public var tasks: Int
    /// The oracle's repeat spread over every plan of the final passes (`PlanCost.repeatSpread`).
    public var repeatSpread: (median: Double, plans: Int)?
    /// The same, of each plan's cost relative to its task's other plans (`PlanCost.relativeSpread`).
    public var relativeSpread: (median: Double, plans: Int)?

    public init(_ tasks: [PlanHeadroom.Task], algorithms: [String], heuristics: [String] = PlannerCatalog.heuristics) {
        let common = tasks.filter { task in algorithms.allSatisfy { (task.costs[$0] ?? nil) != nil } }
        func mean(_ name: String) -> Double { common.reduce(0) { $0 + ($1.costs[name]! ?? 0) } / Double(max(common.count, 1)) }
        let found = mean(PlanHeadroom.found)
        let best = algorithms.filter { heuristics.contains($0) }.map { ($0, mean($0)) }.min { $0.1 < $1.1 }
        planners = algorithms.map { name in
            let mine = mean(name)
            return Planner(name: name, mean: mine, overFound: mine / found - 1,
                           captured: best.flatMap { $0.1 > found ? ($0.1 - mine) / ($0.1 - found) : nil })
        }
        self.found = found
        bestHeuristic = best?.0
        headroom = best.map { 1 - found / $0.1 }
        self.tasks = common.count
        repeatSpread = PlanCost.repeatSpread(tasks.flatMap { $0.passes.values })
        relativeSpread = PlanCost.relativeSpread(tasks.map { Array($0.passes.values) })
    }
}
