import Distributed
import Foundation
import Models
import Sharding
import Testing

/// `PlanEvaluation`, `PlannerComparison` and `TrainingAgreement` in process, without training jobs.
@Suite struct PlanEvaluationTests {
    /// Two shard-small tasks of batch 64 from a 60-table pool, and a third whose two ranks hold
    /// a third of its tables' bytes.
    static func tasks() throws -> [PlanningTask] {
        let pool = try TablePool.generate(count: 60, seed: 3)
        var tasks = try TaskPreset.named("shard-small").draw(count: 3, from: pool, batchSize: 64, seed: 3)
        tasks[2].memoryPerRank = tasks[2].tables.map { $0.bytes(columns: $0.dim, optimizer: .sgd) }.reduce(0, +) / 6
        return tasks
    }

    static let communication = CommunicationCostModel(tables: [2: [(bytes: 8, microseconds: 1), (bytes: 1_048_576, microseconds: 100)]])

    static func evaluation(repeats: Int) -> PlanEvaluation {
        PlanEvaluation(planners: [RoundRobinPlanner(), GreedyPlanner(.size), TorchRecPerfPlanner(communication: communication)],
                       repeats: repeats, trainer: nil,
                       oracle: { CostOracle(batchSize: $0.batchSize, communication: communication, conditions: .concurrent) },
                       predictor: { AnalyticCostModel(batchSize: $0.batchSize, communication: communication) })
    }

    @Test func everyPlannerPlansEveryTaskAndEachPlanIsMeasuredEveryRepeat() throws {
        let tasks = try Self.tasks()
        let results = try tasks.enumerated().flatMap { try Self.evaluation(repeats: 3).evaluate($1, index: $0) }
        #expect(results.map(\.algorithm) == Array(repeating: ["round-robin", "greedy-size", "torchrec-perf"], count: 3).flatMap { $0 })
        for result in results.prefix(6) {
            #expect(result.task < 2 && result.feasible && result.failure == nil)
            let measurements = try #require(result.measurements)
            #expect(measurements.count == 3 && result.measuredMilliseconds == measurements.sorted()[1])
            #expect(result.oracleRanks?.count == 2 && result.predicted?.ranks.count == 2 && result.trained == nil)
            try result.plan?.validate(tables: tasks[result.task].tables, ranks: 2, memoryPerRank: tasks[result.task].memoryPerRank)
        }
        for result in results.suffix(3) {
            #expect(!result.feasible, "\(result.algorithm) placed the tables in a third of their bytes")
            #expect(result.measurements == nil && result.plan == nil && result.failure?.isEmpty == false)
        }
    }

    @Test func theComparisonChargesAnInfeasiblePlanAsTheTasksSlowestAndGainsOverTheBestHeuristic() throws {
        func result(_ task: Int, _ name: String, _ cost: Double?) -> PlanEvaluation.Result {
            let plan = cost.map { _ in ShardingPlan(ranks: 1, algorithm: name, placements: []) }
            return PlanEvaluation.Result(task: task, algorithm: name, failure: cost == nil ? "does not fit" : nil, searchSeconds: 0.5,
                                         measurements: cost.map { [$0] }, oracleRanks: nil, predicted: nil, trainings: nil, plan: plan)
        }
        let results = [result(0, "neuroshard", 8), result(0, "round-robin", 10), result(0, "greedy-size", 12),
                       result(1, "neuroshard", nil), result(1, "round-robin", 20), result(1, "greedy-size", 16),
                       result(2, "neuroshard", nil), result(2, "round-robin", nil), result(2, "greedy-size", nil)]
        let comparison = PlannerComparison(results, algorithms: ["neuroshard", "round-robin", "greedy-size"], tasks: 3)
        #expect(comparison.placed == 2 && comparison.placedByAll == 1)
        let byName = Dictionary(uniqueKeysWithValues: comparison.planners.map { ($0.name, $0) })
        // neuroshard is charged task 1's slowest plan, 20: (8 + 20) / 2.
        #expect(byName["neuroshard"]?.charged == 14 && byName["round-robin"]?.charged == 15 && byName["greedy-size"]?.charged == 14)
        #expect(comparison.bestCharged == "greedy-size" && comparison.bestCommon == "round-robin")
        #expect(byName["neuroshard"]?.chargedGain == 0 && byName["neuroshard"]?.commonGain == 1 - 8.0 / 10)
        #expect(byName["neuroshard"]?.feasible == 1 && byName["neuroshard"]?.evaluated == 3 && byName["neuroshard"]?.meanSearchSeconds == 0.5)
    }

    @Test func agreementOrdersThePlansByEmbeddingAndStepAndMeasuresTheOraclesErrorPerType() throws {
        let task = try Self.tasks()[0]
        let evaluated = try Self.evaluation(repeats: 1).evaluate(task, index: 0)
        /// A training whose slowest rank's embedding CPU time is `factor` times the oracle's.
        func trained(_ result: PlanEvaluation.Result, factor: (Int) -> Double) throws -> PlanEvaluation.Result {
            let ranks = try #require(result.oracleRanks).enumerated().map { rank, cost in
                let milliseconds = (cost.forward + cost.backward) * factor(rank)
                return "{\"embeddingMilliseconds\": \(milliseconds), \"communicationMilliseconds\": 1, \"denseMilliseconds\": 1, "
                    + "\"embeddingCPUMilliseconds\": \(milliseconds), \"denseCPUMilliseconds\": 1}"
            }
            let step = try #require(result.measuredMilliseconds) * factor(0)
            let training = try JSONDecoder().decode(PlanTrainer.Measurement.self,
                                                    from: Data("{\"stepMilliseconds\": \(step), \"ranks\": [\(ranks.joined(separator: ","))]}".utf8))
            return PlanEvaluation.Result(task: 0, algorithm: result.algorithm, searchSeconds: 0, measurements: result.measurements,
                                         oracleRanks: result.oracleRanks, predicted: nil, trainings: [training], plan: result.plan)
        }
        let agreeing = TrainingAgreement(try evaluated.map { try trained($0) { _ in 1.25 } }, tasks: [task], cores: 2)
        #expect(agreeing.tasks.count == 1 && agreeing.tasks[0].plans == 3)
        #expect(agreeing.medianByEmbedding == 1 && agreeing.medianByStep == 1)
        // The oracle is 20% below a training 1.25 times its figures, on every rank of every type.
        let errors = try #require(agreeing.errors[.tableWise])
        #expect(errors.allSatisfy { abs($0 + 0.2) < 1e-9 })
        // Training that reverses the oracle's order of the plans' slowest ranks.
        let slowest = evaluated.map { $0.oracleRanks!.map { $0.forward + $0.backward }.max()! }
        let reversed = try evaluated.enumerated().map { i, result in try trained(result) { _ in 1 / (slowest[i] * slowest[i]) } }
        let disagreeing = TrainingAgreement(reversed, tasks: [task], cores: 1)
        #expect(disagreeing.medianByEmbedding == -1 && disagreeing.medianByStep == nil)
    }

    @Test func headroomIsTheFoundPlansGainOverTheBestHeuristicAndEachPlannerCapturesAShare() throws {
        func task(_ index: Int, _ costs: String, passes: String = "") throws -> PlanHeadroom.Task {
            let json = "{\"task\": \(index), \"costs\": {\(costs)}, \"passes\": {\(passes)}, \"start\": \"neuroshard\", \"steps\": [], \"measurements\": 5, "
                + "\"seconds\": 1, \"stopped\": \"no move helps\", \"found\": {\"formatVersion\": 2, \"ranks\": 1, \"algorithm\": \"x\", \"placements\": []}}"
            return try JSONDecoder().decode(PlanHeadroom.Task.self, from: Data(json.utf8))
        }
        let tasks = [try task(0, #""neuroshard": 10, "greedy-size": 12, "round-robin": 14, "found": 8"#, passes: #""neuroshard": [10, 11], "found": [8, 8, 8]"#),
                     try task(1, #""neuroshard": 20, "greedy-size": 24, "round-robin": 22, "found": 16"#),
                     try task(2, #""neuroshard": null, "greedy-size": 5, "round-robin": 5, "found": 4"#)]
        let summary = HeadroomSummary(tasks, algorithms: ["neuroshard", "greedy-size", "round-robin"])
        // Task 3 is not placed by every planner. Means: neuroshard 15, greedy-size 18, round-robin 18, found 12.
        #expect(summary.tasks == 2 && summary.found == 12 && summary.bestHeuristic == "greedy-size")
        #expect(abs(summary.headroom! - (1 - 12.0 / 18)) < 1e-12)
        let neuroShard = try #require(summary.planners.first)
        #expect(neuroShard.mean == 15 && abs(neuroShard.overFound - 0.25) < 1e-12 && neuroShard.captured == 0.5)
        #expect(summary.planners[1].captured == 0)
        // The final passes' spread: 1/10.5 for neuroshard's plan, none for the plan found.
        #expect(summary.repeatSpread?.plans == 2 && abs(summary.repeatSpread!.median - 0.5 / 10.5) < 1e-12)
    }
}
