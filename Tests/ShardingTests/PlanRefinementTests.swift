import Foundation
import Models
import Sharding
import Testing

/// `PlanRefinement` against a cost that does not vary between measurements, so every run takes
/// the same moves.
@Suite struct PlanRefinementTests {
    static let communication = CommunicationCostModel(tables: [2: [(bytes: 8, microseconds: 1), (bytes: 1_048_576, microseconds: 100)],
                                                               3: [(bytes: 8, microseconds: 1), (bytes: 1_048_576, microseconds: 100)]])

    /// A refinement whose measurements are the cost law's; `measured` is called once per plan.
    static func refinement(_ task: PlanningTask, budget: Int, measured: @escaping () -> Void = {}) throws -> PlanRefinement {
        let model = AnalyticCostModel(batchSize: task.batchSize, communication: communication)
        return try PlanRefinement(task: task, predictor: model, budget: budget) { plans in
            try plans.map { plan in
                measured()
                return try model.cost(of: plan, tables: task.tables)
            }
        }
    }

    @Test func movesWorkOffTheSlowestRankUntilNoMoveHelps() throws {
        var task = try PlannerTests.task(ranks: 3, memoryFraction: 1)
        task.dataParallelBytes = 64 << 10
        let lopsided = ShardingPlan(tables: task.tables, rankOfTable: [0, 0, 0, 0, 0, 1], ranks: 3, algorithm: "lopsided")
        var calls = 0
        let outcome = try Self.refinement(task, budget: 500) { calls += 1 }.refine(lopsided)
        #expect(outcome.stopped == "no move helps" && outcome.measurements == calls && calls <= 500)
        #expect(outcome.plan.algorithm == "lopsided+refined")
        try outcome.plan.validate(tables: task.tables, ranks: 3, memoryPerRank: task.memoryPerRank)
        #expect(outcome.steps.count >= 2 && outcome.steps.allSatisfy { $0.after < $0.before })
        #expect(outcome.cost.total < 0.6 * outcome.start.total, "\(outcome.start.total) -> \(outcome.cost.total): \(outcome.steps.map(\.move))")
        // Rank 2 held nothing; now it holds work.
        #expect(!outcome.plan.shardsByRank(tables: task.tables)[2].isEmpty || !outcome.plan.replicatedTables(tables: task.tables).isEmpty)
        // The same start and the same costs take the same moves.
        #expect(try Self.refinement(task, budget: 500).refine(lopsided).steps.map(\.move) == outcome.steps.map(\.move))
    }

    @Test func theBudgetBoundsTheMeasurements() throws {
        let task = try PlannerTests.task(ranks: 3, memoryFraction: 1)
        let lopsided = ShardingPlan(tables: task.tables, rankOfTable: [0, 0, 0, 0, 0, 1], ranks: 3, algorithm: "lopsided")
        var calls = 0
        let outcome = try Self.refinement(task, budget: 8) { calls += 1 }.refine(lopsided)
        // 3 of the start, then a round of the current plan and 3 candidates; no room for a round of 2.
        #expect(calls == 7 && outcome.measurements == 7 && outcome.stopped == "budget of 8 measurements spent")
    }

    /// A measurement that would end past the time limit is not started.
    @Test func theTimeLimitBoundsTheSearchsTime() throws {
        let task = try PlannerTests.task(ranks: 3, memoryFraction: 1)
        let lopsided = ShardingPlan(tables: task.tables, rankOfTable: [0, 0, 0, 0, 0, 1], ranks: 3, algorithm: "lopsided")
        let model = AnalyticCostModel(batchSize: task.batchSize, communication: Self.communication)
        let refinement = try PlanRefinement(task: task, predictor: model, budget: 500, timeLimit: .milliseconds(250)) { plans in
            Thread.sleep(forTimeInterval: 0.04 * Double(plans.count))
            return try plans.map { try model.cost(of: $0, tables: task.tables) }
        }
        let outcome = try refinement.refine(lopsided)
        #expect(outcome.stopped == "time limit of 0.25 seconds reached", "\(outcome.stopped)")
        #expect(outcome.seconds < 0.375 && outcome.measurements <= 6, "\(outcome.seconds) s, \(outcome.measurements) measurements")
    }

    @Test func aMovedBlockMeetingItsNeighbourOnARankIsFusedWithIt() throws {
        let task = try PlannerTests.task(ranks: 2, memoryFraction: 1)
        let split = ShardingPlan.Placement(table: "t0", shards: [.init(columns: 0..<32, rank: 0), .init(columns: 32..<64, rank: 0)])
        let fused = split.fused(task.tables[0])
        #expect(fused.isTableWise && fused.shards == [.init(columns: 0..<64, rank: 0)])
        let rows = ShardingPlan.Placement(table: "t0", shards: [.init(columns: 0..<64, rows: 25_000..<50_000, rank: 1),
                                                                 .init(columns: 0..<64, rows: 0..<25_000, rank: 1)])
        #expect(rows.fused(task.tables[0]).isTableWise)
    }

    @Test func badBudgetsAndPlansForOtherTablesAreRefused() throws {
        let task = try PlannerTests.task()
        #expect(throws: PlanError("a refinement budget of 0 measurements; it must be at least 1")) { try Self.refinement(task, budget: 0) }
        let model = AnalyticCostModel(batchSize: task.batchSize, communication: Self.communication)
        #expect(throws: PlanError("a refinement time limit of -1.0 seconds; it must be positive")) {
            try PlanRefinement(task: task, predictor: model, budget: 5, timeLimit: .seconds(-1)) { _ in [] }
        }
        var other = ShardingPlan.roundRobin(task.tables, ranks: 2)
        other.placements[0].table = "clicks"
        #expect(throws: PlanError("plan places table clicks, which is not in the table specs")) { try Self.refinement(task, budget: 5).refine(other) }
    }
}
