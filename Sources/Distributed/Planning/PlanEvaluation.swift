import Foundation
import Models
import Sharding

/// Planners judged side by side on the same tasks: every planner plans every task, and each
/// plan is measured by the cost oracle `repeats` times and, with a trainer, trained as often.
/// The repeats run in passes over the task's plans (`CostOracle.measureInPasses`): in a pass
/// the isolated oracle measures the task's plans together, in the same rounds, so a slow spell
/// of a shared machine falls on all of them alike. Every figure is a median over the repeats.
public struct PlanEvaluation {
    /// One planner's plan for one task, and what it measured.
    public struct Result: Codable, Sendable {
        /// The task's index in the evaluated list.
        public let task: Int
        public let algorithm: String
        public let feasible: Bool
        public let failure: String?
        public let searchSeconds: Double
        /// The median of `measurements`.
        public let measuredMilliseconds: Double?
        /// The oracle's step cost at every repeat, on its clock.
        public let measurements: [Double]?
        /// The same on every clock the oracle reads (`CostOracle.clocks`), by the clock's name.
        public let measurementsByClock: [String: [Double]]?
        /// Each rank's median part by part over the oracle's measurements.
        public let oracleRanks: [RankCost]?
        /// The prediction of the evaluation's `predictor` (NeuroShard's cost model in `plan eval`).
        public let predicted: PlanCost?
        /// What training the plan measured (the median of `trainings`), and each training.
        public let trained: PlanTrainer.Measurement?
        public let trainings: [PlanTrainer.Measurement]?
        public let plan: ShardingPlan?

        public init(task: Int, algorithm: String, failure: String? = nil, searchSeconds: Double, measurements: [Double]?,
                    measurementsByClock: [String: [Double]]? = nil, oracleRanks: [RankCost]?, predicted: PlanCost?,
                    trainings: [PlanTrainer.Measurement]?, plan: ShardingPlan?) {
            self.task = task
            self.algorithm = algorithm
            feasible = plan != nil
            self.failure = failure
            self.searchSeconds = searchSeconds
            measuredMilliseconds = measurements.map(median)
            self.measurements = measurements
            self.measurementsByClock = measurementsByClock
            self.oracleRanks = oracleRanks
            self.predicted = predicted
            trained = trainings.map(PlanTrainer.Measurement.median)
            self.trainings = trainings
            self.plan = plan
        }
    }

    public var planners: [any Planner]
    public var repeats: Int
    /// Trains every plan when set.
    public var trainer: PlanTrainer?
    /// The oracle that measures a task's plans (a fresh one per task: the concurrent oracle's
    /// typical speed is then the task's own).
    public var oracle: (PlanningTask) throws -> CostOracle
    /// The model whose prediction each result carries, and which ranks refinement's moves.
    public var predictor: (PlanningTask) throws -> any PlanCostModel
    /// Planners whose plans are also refined (`PlanRefinement`) with up to `budget` oracle
    /// measurements each; a refined plan is evaluated beside its planner's as "<name>+refined".
    public var refining: (planners: Set<String>, budget: Int)?

    public init(planners: [any Planner], repeats: Int, trainer: PlanTrainer?, refining: (planners: Set<String>, budget: Int)? = nil,
                oracle: @escaping (PlanningTask) throws -> CostOracle, predictor: @escaping (PlanningTask) throws -> any PlanCostModel) {
        self.planners = planners
        self.repeats = max(1, repeats)
        self.trainer = trainer
        self.refining = refining
        self.oracle = oracle
        self.predictor = predictor
    }

    /// The names results carry, in order: the planners', then each refined one's.
    public var names: [String] {
        planners.map(\.name) + planners.map(\.name).filter { refining?.planners.contains($0) == true }.map { $0 + "+refined" }
    }

    /// Plans, measures and trains task `index` of an evaluation; one result per name of
    /// `names`. A planner that cannot place the task gives an infeasible result with its
    /// reason; a training job that fails throws.
    public func evaluate(_ task: PlanningTask, index: Int) throws -> [Result] {
        let oracle = try oracle(task), predictor = try predictor(task)
        typealias Planned = (name: String, plan: ShardingPlan?, seconds: Double, failure: String?)
        var plans = planners.map { planner -> Planned in
            let start = ContinuousClock.now
            do {
                let plan = try planner.plan(task)
                let seconds = (ContinuousClock.now - start).seconds
                try plan.validate(tables: task.tables, memoryPerRank: task.memoryPerRank, optimizer: task.optimizer)
                return (planner.name, plan, seconds, nil)
            } catch {
                return (planner.name, nil, (ContinuousClock.now - start).seconds, "\(error)")
            }
        }
        if let refining {
            for planned in plans where refining.planners.contains(planned.name) {
                guard let plan = planned.plan else {
                    plans.append(Planned(planned.name + "+refined", nil, 0, planned.failure))
                    continue
                }
                let refinement = try PlanRefinement(task: task, predictor: predictor, budget: refining.budget) {
                    try oracle.costs(of: $0, tables: task.tables)
                }
                let outcome = try refinement.refine(plan)
                plans.append(Planned(planned.name + "+refined", outcome.plan, planned.seconds + outcome.seconds, nil))
            }
        }
        var measurements = [[Double]](repeating: [], count: plans.count)
        var byClock = [[String: [Double]]](repeating: [:], count: plans.count)
        var oracleCosts = [[PlanCost]](repeating: [], count: plans.count)
        var trainings = [[PlanTrainer.Measurement]](repeating: [], count: plans.count)
        try oracle.measureInPasses(plans.map(\.plan), tables: task.tables, passes: repeats) { i, costs in
            for (clock, cost) in costs { byClock[i][clock.rawValue, default: []].append(cost.total) }
            measurements[i].append(costs[oracle.clock]!.total)
            oracleCosts[i].append(costs[oracle.clock]!)
            if let trainer { trainings[i].append(try trainer.train(plans[i].plan!, task: task)) }
        }
        return try plans.indices.map { i in
            let plan = plans[i].plan
            return Result(task: index, algorithm: plans[i].name, failure: plans[i].failure, searchSeconds: plans[i].seconds,
                          measurements: plan == nil ? nil : measurements[i], measurementsByClock: plan == nil ? nil : byClock[i],
                          oracleRanks: oracleCosts[i].isEmpty ? nil : PlanCost.median(oracleCosts[i]).ranks,
                          predicted: try plan.map { plan throws(PlanError) in try predictor.cost(of: plan, tables: task.tables) },
                          trainings: trainings[i].isEmpty ? nil : trainings[i], plan: plan)
        }
    }
}

/// How training agrees with the oracle over evaluated tasks: per task, the Spearman
/// correlation of the two orderings of its plans, by embedding compute (the slowest rank's
/// trained CPU time against the oracle's slowest compute) and, where the ranks fit the cores
/// so wall time is honest, by step (trained wall step time against the oracle's total); and per
/// sharding type, the relative error of the oracle's per-rank embedding time against the
/// trained CPU time of every rank holding a shard of that type.
public struct TrainingAgreement: Sendable {
    public struct Task: Sendable {
        public var index: Int
        public var ranks: Int
        public var plans: Int
        public var byEmbedding: Double
        /// Nil where the ranks outnumber the cores.
        public var byStep: Double?
    }

    /// The tasks with at least two trained plans.
    public var tasks: [Task]
    /// Per sharding type, (oracle - trained) / trained of each rank holding a shard of it.
    public var errors: [ShardingPlan.ShardingType: [Double]]

    public init(_ results: [PlanEvaluation.Result], tasks: [PlanningTask], cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.tasks = tasks.indices.compactMap { t in
            let mine = results.filter { $0.task == t && $0.trained != nil && $0.oracleRanks != nil }
            guard mine.count >= 2 else { return nil }
            let byEmbedding = spearman(mine.map { $0.oracleRanks!.map { $0.forward + $0.backward }.max()! }, mine.map { $0.trained!.embeddingMilliseconds })
            let byStep = tasks[t].ranks <= cores ? spearman(mine.map { $0.measuredMilliseconds! }, mine.map { $0.trained!.stepMilliseconds }) : nil
            return Task(index: t, ranks: tasks[t].ranks, plans: mine.count, byEmbedding: byEmbedding, byStep: byStep)
        }
        var errors: [ShardingPlan.ShardingType: [Double]] = [:]
        for result in results {
            guard let trained = result.trained, let oracleRanks = result.oracleRanks, let plan = result.plan else { continue }
            for rank in 0..<min(trained.ranks.count, oracleRanks.count) {
                let measured = trained.ranks[rank].embeddingCPUMilliseconds
                guard measured > 0 else { continue }
                let error = (oracleRanks[rank].forward + oracleRanks[rank].backward - measured) / measured
                for type in Set(plan.placements.filter { $0.dataParallel || $0.shards.contains { $0.rank == rank } }.map(\.type)) {
                    errors[type, default: []].append(error)
                }
            }
        }
        self.errors = errors
    }

    public var medianByEmbedding: Double? { tasks.isEmpty ? nil : median(tasks.map(\.byEmbedding)) }
    public var medianByStep: Double? {
        let steps = tasks.compactMap(\.byStep)
        return steps.isEmpty ? nil : median(steps)
    }
}

/// Planners compared by the oracle over evaluated tasks. Per planner: the mean cost over every
/// task some planner placed, an infeasible plan charged as the task's slowest feasible one
/// (failing is never cheaper than the worst plan found, and no task drops out of one
/// planner's mean), and the mean over the tasks every planner placed; each with its gain over
/// the best heuristic by the same mean; feasibility and mean search time.
public struct PlannerComparison: Sendable {
    public struct Planner: Sendable {
        public var name: String
        /// Mean over the tasks some planner placed, infeasible plans charged.
        public var charged: Double?
        /// 1 - charged / the best heuristic's.
        public var chargedGain: Double?
        /// Mean over the tasks every planner placed.
        public var common: Double?
        public var commonGain: Double?
        public var feasible: Int
        public var evaluated: Int
        public var meanSearchSeconds: Double
    }

    public var planners: [Planner]
    public var tasks: Int
    public var placed: Int
    public var placedByAll: Int
    /// The heuristic with the least charged mean, and the one with the least common mean.
    public var bestCharged: String?
    public var bestCommon: String?
    /// The oracle's repeat spread over the plans measured more than once (`PlanCost.repeatSpread`),
    /// on its clock and, where it read others, on each of them by name.
    public var repeatSpread: (median: Double, plans: Int)?
    public var repeatSpreadByClock: [String: (median: Double, plans: Int)]
    /// The same, of each plan's cost relative to its task's other plans (`PlanCost.relativeSpread`).
    public var relativeSpread: (median: Double, plans: Int)?

    public init(_ results: [PlanEvaluation.Result], algorithms: [String], tasks: Int, heuristics: [String] = PlannerCatalog.heuristics) {
        func cost(_ a: String, _ t: Int) -> Double? { results.first { $0.task == t && $0.algorithm == a }?.measuredMilliseconds }
        func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        let worst = (0..<tasks).map { t in results.filter { $0.task == t }.compactMap(\.measuredMilliseconds).max() }
        let placed = (0..<tasks).filter { worst[$0] != nil }
        let placedByAll = placed.filter { t in algorithms.allSatisfy { cost($0, t) != nil } }
        let charged = algorithms.map { a in mean(placed.map { cost(a, $0) ?? worst[$0]! }) }
        let common = algorithms.map { a in mean(placedByAll.compactMap { cost(a, $0) }) }
        /// The best heuristic by `means`, and each planner's gain over it.
        func versus(_ means: [Double?]) -> (best: String?, gains: [Double?]) {
            let best = algorithms.indices.filter { heuristics.contains(algorithms[$0]) }.compactMap { i in means[i].map { (i, $0) } }.min { $0.1 < $1.1 }
            return (best.map { algorithms[$0.0] }, means.map { mine in mine.flatMap { c in best.map { 1 - c / $0.1 } } })
        }
        let (bestCharged, chargedGains) = versus(charged), (bestCommon, commonGains) = versus(common)
        planners = algorithms.indices.map { i in
            let mine = results.filter { $0.algorithm == algorithms[i] }
            return Planner(name: algorithms[i], charged: charged[i], chargedGain: chargedGains[i], common: common[i], commonGain: commonGains[i],
                           feasible: mine.filter(\.feasible).count, evaluated: mine.count,
                           meanSearchSeconds: mine.map(\.searchSeconds).reduce(0, +) / Double(max(mine.count, 1)))
        }
        self.tasks = tasks
        self.placed = placed.count
        self.placedByAll = placedByAll.count
        self.bestCharged = bestCharged
        self.bestCommon = bestCommon
        repeatSpread = PlanCost.repeatSpread(results.compactMap(\.measurements))
        relativeSpread = PlanCost.relativeSpread((0..<tasks).map { t in results.filter { $0.task == t }.compactMap(\.measurements) })
        let clocks = Set(results.flatMap { $0.measurementsByClock?.keys.map { $0 } ?? [] })
        repeatSpreadByClock = Dictionary(uniqueKeysWithValues: clocks.compactMap { clock in
            PlanCost.repeatSpread(results.compactMap { $0.measurementsByClock?[clock] }).map { (clock, $0) }
        })
    }
}
