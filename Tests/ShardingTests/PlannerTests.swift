import Foundation
import Models
import Sharding
import Testing

/// Plans, their validation, the baselines, the oracle and NeuroShard.
@Suite struct PlannerTests {
    static func tables() throws -> [TableSpec] {
        try [(50_000, 64, 20.0), (20_000, 32, 5), (8_000, 16, 30), (1_000, 8, 2), (30_000, 64, 1), (500, 4, 50)].enumerated().map {
            try TableSpec(name: "t\($0.offset)", rows: $0.element.0, dim: $0.element.1, poolingFactor: $0.element.2, distribution: .zipf(0.9))
        }
    }

    static func task(ranks: Int = 2, memoryFraction: Double = 0.7) throws -> PlanningTask {
        let tables = try tables()
        let total = tables.reduce(0) { $0 + $1.bytes(columns: $1.dim, optimizer: .sgd) }
        return PlanningTask(tables: tables, ranks: ranks, memoryPerRank: Int(Double(total) * memoryFraction), batchSize: 128)
    }

    @Test func validationNamesTheTableOrRankAtFault() throws {
        let tables = try Self.tables()
        var plan = ShardingPlan.roundRobin(tables, ranks: 2)
        try plan.validate(tables: tables)
        plan.placements[0].shards = [.init(columns: 0..<32, rank: 0)]
        #expect(throws: PlanError("table t0: columns 32..<64 are not placed")) { try plan.validate(tables: tables) }
        plan.placements[0].shards = [.init(columns: 0..<40, rank: 0), .init(columns: 32..<64, rank: 1)]
        #expect(throws: PlanError("table t0: columns from 32 are covered twice")) { try plan.validate(tables: tables) }
        plan.placements[0].shards = [.init(columns: 0..<64, rank: 2)]
        #expect(throws: PlanError("table t0: shard on rank 2, but the plan has ranks 0..<2")) { try plan.validate(tables: tables) }
        plan = ShardingPlan.roundRobin(tables, ranks: 2)
        plan.placements[1].table = "nope"
        #expect(throws: PlanError("plan places table nope, which is not in the table specs")) { try plan.validate(tables: tables) }
        plan = ShardingPlan.roundRobin(tables, ranks: 2)
        #expect(throws: PlanError("plan is for 2 ranks, the job has 4")) { try plan.validate(tables: tables, ranks: 4) }
        #expect(throws: PlanError.self) { try plan.validate(tables: tables, memoryPerRank: 1 << 20) }
    }

    @Test func plansRoundTripThroughJSON() throws {
        let plan = try RoundRobinPlanner().plan(try Self.task())
        try withTemporaryFile("") { path in
            try plan.write(to: path)
            #expect(try ShardingPlan.read(path) == plan)
        }
        try withTemporaryFile(#"{"formatVersion": 3}"#) { path in
            #expect(throws: PlanError("\(path): plan format version 3; this build reads versions 1-2")) { try ShardingPlan.read(path) }
        }
    }

    @Test func rowWiseAndDataParallelPlansValidateEveryRowAndTheirMemory() throws {
        let tables = try Self.tables()
        var plan = ShardingPlan.roundRobin(tables, ranks: 2)
        let t0 = tables[0], rows = t0.rows
        plan.placements[0].shards = [.init(columns: 0..<t0.dim, rows: 0..<100, rank: 0), .init(columns: 0..<t0.dim, rows: 100..<rows, rank: 1)]
        plan.placements[1] = .replicated(tables[1].name)
        try plan.validate(tables: tables)
        #expect(plan.placements[0].type == .rowWise && plan.placements[1].type == .dataParallel && plan.placements[2].type == .tableWise)
        let memory = plan.memoryByRank(tables: tables, optimizer: .adagrad)
        let replica = tables[1].bytes(columns: tables[1].dim, optimizer: .adagrad)
        #expect(memory[0] == tables[0].bytes(rows: 100, columns: t0.dim, optimizer: .adagrad) + replica
                + tables.indices.filter { $0 >= 2 && $0 % 2 == 0 }.reduce(0) { $0 + tables[$1].bytes(columns: tables[$1].dim, optimizer: .adagrad) })
        #expect(plan.shardsByRank(tables: tables).joined().allSatisfy { $0.table != 1 } && plan.replicatedTables(tables: tables) == [1])

        var bad = plan
        bad.placements[0].shards[1].rows = 90..<rows
        #expect(throws: PlanError("table t0: rows from 90 are covered twice")) { try bad.validate(tables: tables) }
        bad.placements[0].shards[1].rows = 120..<rows
        #expect(throws: PlanError("table t0: rows 100..<120 are not placed")) { try bad.validate(tables: tables) }
        bad.placements[0].shards[1].rows = 100..<(rows + 5)
        #expect(throws: PlanError("table t0: shard on rank 1 reaches row \(rows + 5), but the table has \(rows) rows")) { try bad.validate(tables: tables) }
        bad.placements[0].shards = [.init(columns: 0..<8, rows: 0..<100, rank: 0), .init(columns: 0..<t0.dim, rows: 50..<rows, rank: 1)]
        #expect(throws: PlanError("table t0: shards on ranks 0 and 1 both hold rows 50..<100, columns 0..<8")) { try bad.validate(tables: tables) }
        bad.placements[0].shards = [.init(columns: 0..<8, rows: 0..<100, rank: 0), .init(columns: 0..<t0.dim, rows: 100..<rows, rank: 1)]
        #expect(throws: PlanError("table t0: its shards hold \(100 * 8 + (rows - 100) * t0.dim) of its \(rows * t0.dim) values; some rows or columns are not placed")) {
            try bad.validate(tables: tables)
        }
        let replicaBytes = tables[1].bytes(columns: tables[1].dim, optimizer: .sgd)
        #expect(throws: PlanError("table \(tables[1].name) is data-parallel, but its \(ByteCount(replicaBytes)) exceed a rank's \(ByteCount(replicaBytes - 4)) by 4 B")) {
            try plan.validate(tables: tables, memoryPerRank: replicaBytes - 4)
        }
        var old = plan
        old.formatVersion = 1
        #expect(throws: PlanError("table t0: row_wise sharding needs plan format version 2; the plan says version 1")) { try old.validate(tables: tables) }
    }

    @Test func planFilesOfBothVersionsLoadAndTypesAreChecked() throws {
        let tables = try Self.tables()
        let names = tables.map(\.name)
        let version1 = #"{"formatVersion": 1, "ranks": 2, "algorithm": "x", "placements": ["# + names.enumerated().map { t, name in
            #"{"table": "\#(name)", "shards": [{"columns": [0, \#(tables[t].dim)], "rank": \#(t % 2)}]}"#
        }.joined(separator: ", ") + "]}"
        try withTemporaryFile(version1) { path in
            let plan = try ShardingPlan.read(path)
            try plan.validate(tables: tables)
            #expect(plan.formatVersion == 1 && plan.placements == ShardingPlan.roundRobin(tables, ranks: 2).placements)
        }
        for (placement, message) in [
            (#"{"table": "t0", "type": "diagonal", "shards": []}"#,
             "table t0: sharding type 'diagonal' is not one of table_wise, column_wise, row_wise, grid_shard, data_parallel"),
            (#"{"table": "t0", "type": "row_wise", "shards": [{"columns": [0, 8], "rank": 0}, {"columns": [8, 64], "rank": 1}]}"#,
             "table t0: declared row_wise, but its shards make it column_wise"),
            (#"{"table": "t0", "type": "data_parallel", "shards": [{"columns": [0, 64], "rank": 0}]}"#,
             "table t0: a data_parallel table lists no shards"),
        ] {
            try withTemporaryFile(#"{"formatVersion": 2, "ranks": 2, "algorithm": "x", "placements": ["# + placement + "]}") { path in
                #expect(throws: PlanError("\(path): \(message)")) { try ShardingPlan.read(path) }
            }
        }
    }

    @Test(arguments: PlannerCatalog.heuristics)
    func baselinesFitMemoryOrSayWhichTableDoesNot(name: String) throws {
        let communication = CommunicationCostModel(tables: [2: [(bytes: 8, microseconds: 1), (bytes: 1_048_576, microseconds: 100)]])
        let planner = try PlannerCatalog.planner(named: name, seed: 1, communication: communication, models: .shipped)
        let task = try Self.task()
        let plan = try planner.plan(task)
        try plan.validate(tables: task.tables, ranks: 2, memoryPerRank: task.memoryPerRank)
        // A table no rank can hold whole is cut by rows, as TorchRec's planner does.
        var tight = task
        tight.memoryPerRank = task.bytes(ofTable: 0) - 1
        let split = try planner.plan(tight)
        try split.validate(tables: task.tables, ranks: 2, memoryPerRank: tight.memoryPerRank)
        #expect(split.placements[0].type == .rowWise)
        tight.memoryPerRank = task.bytes(ofTable: 0) / 2 - 1
        let free = 2 * tight.memoryPerRank
        #expect(throws: PlanError("table t0 (12.2 MiB) fits on no rank, nor cut by rows over up to 2 ranks: they have \(ByteCount(free)) free in all, "
                                  + "\(ByteCount(task.bytes(ofTable: 0) - free)) short")) { try planner.plan(tight) }
    }

    @Test(arguments: PlannerCatalog.heuristics)
    func baselinesReplicateTablesUnderTheDataParallelLimit(name: String) throws {
        let communication = CommunicationCostModel(tables: [2: [(bytes: 8, microseconds: 1), (bytes: 1_048_576, microseconds: 100)]])
        let planner = try PlannerCatalog.planner(named: name, seed: 1, communication: communication, models: .shipped)
        var task = try Self.task()
        task.dataParallelBytes = 64 << 10
        let plan = try planner.plan(task)
        try plan.validate(tables: task.tables, ranks: 2, memoryPerRank: task.memoryPerRank)
        // t3 (1,000 x 8) and t5 (500 x 4) are under 64 KiB.
        #expect(plan.replicatedTables(tables: task.tables) == [3, 5])
        #expect(plan.placements.filter { $0.type == .tableWise }.count == 4)
    }

    @Test func randomPlansFollowTheSeed() throws {
        let task = try Self.task(ranks: 3, memoryFraction: 1)
        #expect(try RandomPlanner(seed: 4).plan(task) == RandomPlanner(seed: 4).plan(task))
    }

    @Test(arguments: [(CostOracle.Conditions.isolated, false), (.isolated, true), (.concurrent, false)])
    func theOracleMeasuresALoadedRankAsSlower(conditions: CostOracle.Conditions, speedNormalised: Bool) throws {
        let tables = try Self.tables()
        let plan = ShardingPlan(tables: tables, rankOfTable: [0, 0, 0, 1, 0, 0], ranks: 2, algorithm: "lopsided")
        let oracle = CostOracle(batchSize: 256, communication: CommunicationCostModel(tables: [:]),
                                speedReference: speedNormalised ? try SpeedReference.shipped() : nil, conditions: conditions)
        #expect(oracle.iterations == (conditions == .isolated ? 11 : 25))
        let cost = try oracle.cost(of: plan, tables: tables)
        #expect(cost.ranks.allSatisfy { $0.forward > 0 && $0.backward > 0 })
        #expect(cost.ranks[0].forward + cost.ranks[0].backward > 2 * (cost.ranks[1].forward + cost.ranks[1].backward))
    }

    /// Concurrent conditions time what training times, in this machine's milliseconds.
    @Test func concurrentConditionsIgnoreTheSpeedReference() throws {
        let oracle = CostOracle(batchSize: 64, communication: CommunicationCostModel(tables: [:]),
                                speedReference: try SpeedReference.shipped(), conditions: .concurrent)
        #expect(oracle.speedReference == nil)
    }

    @Test func speedReferenceFilesRefuseOtherVersionsAndNonPositiveTimes() throws {
        #expect(try SpeedReference.shipped().milliseconds > 0)
        try withTemporaryFile("") { path in
            try SpeedReference(milliseconds: 1.5, cpuMilliseconds: 1.25, rounds: 10).write(to: path)
            #expect(try SpeedReference.read(path).milliseconds(on: .wall) == 1.5 && SpeedReference.read(path).milliseconds(on: .cpu) == 1.25)
            try Data(#"{"formatVersion": 2, "milliseconds": 1.5, "rounds": 10}"#.utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: PlanError("\(path): speed reference format version 2; this build reads version 1")) { try SpeedReference.read(path) }
            try Data(#"{"formatVersion": 1, "milliseconds": 0, "rounds": 10}"#.utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: PlanError("\(path): speed reference of 0.0 ms; it must be positive")) { try SpeedReference.read(path) }
        }
    }

    /// The spread of repeats: per plan the median pairwise difference over the pair's mean,
    /// then the median over plans; a plan measured once has none.
    @Test func repeatSpreadIsTheMedianPairwiseDifference() throws {
        #expect(PlanCost.repeatSpread([[3], []]) == nil)
        let spread = try #require(PlanCost.repeatSpread([[1, 1.1], [2, 2, 2.2], [3], [4, 4]]))
        #expect(spread.plans == 3 && abs(spread.median - 0.1 / 1.05) < 1e-12)
    }

    /// A pass slower throughout cancels relative to the task's other plans; a plan that moved
    /// against them does not. A task of one plan has nothing to compare with.
    @Test func relativeSpreadCancelsDriftBetweenPasses() throws {
        let drift = [[10, 11], [20, 22], [5, 5.5]]
        #expect(try #require(PlanCost.relativeSpread([drift, [[7, 9]]])).median < 1e-12)
        #expect(PlanCost.relativeSpread([[[7, 9]]]) == nil)
        // The third plan measured 10% dearer in the second pass, the others not: against the
        // other two, each of the first two moved by 1/sqrt(1.1), the third by 1.1.
        let moved = try #require(PlanCost.relativeSpread([[[10, 10], [20, 20], [5, 5.5]]]))
        let first = 1 / sqrt(1.1)
        #expect(moved.plans == 3 && abs(moved.median - (1 - first) / ((1 + first) / 2)) < 1e-12, "\(moved)")
    }

    /// Plans measured together come back in order, each with its own ranks' times, and the
    /// groups keep the shards within memory; under concurrent conditions a plan runs alone.
    @Test func plansMeasuredTogetherKeepTheirOwnCosts() throws {
        let tables = try Self.tables()
        let lopsided = ShardingPlan(tables: tables, rankOfTable: [0, 0, 0, 1, 0, 0], ranks: 2, algorithm: "lopsided")
        let flipped = ShardingPlan(tables: tables, rankOfTable: [1, 1, 1, 0, 1, 1], ranks: 2, algorithm: "flipped")
        let oracle = CostOracle(batchSize: 256, communication: CommunicationCostModel(tables: [:]))
        let costs = try oracle.costsOnEveryClock(of: [lopsided, flipped], tables: tables).map { $0[oracle.clock]!.ranks.map { $0.forward + $0.backward } }
        #expect(costs[0][0] > 2 * costs[0][1] && costs[1][1] > 2 * costs[1][0], "\(costs)")
        let bytes = UInt64(tables.reduce(0) { $0 + $1.bytes(columns: $1.dim, optimizer: .sgd) })
        #expect(oracle.jointGroups(count: 5, tables: tables, memoryBytes: 6 * bytes) == [0..<2, 2..<4, 4..<5])
        #expect(oracle.jointGroups(count: 2, tables: tables, memoryBytes: bytes) == [0..<1, 1..<2])
        let concurrent = CostOracle(batchSize: 256, communication: CommunicationCostModel(tables: [:]), conditions: .concurrent)
        #expect(concurrent.jointGroups(count: 2, tables: tables, memoryBytes: 100 * bytes) == [0..<1, 1..<2])
    }

    /// Both clocks time the same work; the loaded rank stays the slower one on either (by 2x
    /// on CPU time). Wall time also counts the time other processes take the core, which on a
    /// loaded machine can hide the gap in one measurement, so it gets three.
    @Test(arguments: CostOracle.Clock.allCases)
    func theIsolatedOracleTimesOnTheClockItIsGiven(clock: CostOracle.Clock) throws {
        let tables = try Self.tables()
        let plan = ShardingPlan(tables: tables, rankOfTable: [0, 0, 0, 1, 0, 0], ranks: 2, algorithm: "lopsided")
        let oracle = CostOracle(batchSize: 256, communication: CommunicationCostModel(tables: [:]), clock: clock)
        #expect(oracle.clock == clock)
        let margin = clock == .cpu ? 2.0 : 1.0
        var seen: [[Double]] = []
        for _ in 0..<(clock == .cpu ? 1 : 3) {
            let cost = try oracle.cost(of: plan, tables: tables)
            seen.append(cost.ranks.map { $0.forward + $0.backward })
            if seen.last![0] > margin * seen.last![1] { break }
        }
        #expect(seen.last![0] > margin * seen.last![1], "rank costs per measurement: \(seen)")
        #expect(CostOracle(batchSize: 256, communication: CommunicationCostModel(tables: [:]), conditions: .concurrent, clock: .wall).clock == .cpu)
    }

    /// The cost model sees a shard as the rows it holds, with its width, its table's width and
    /// its sharding type.
    @Test func costModelPiecesCarryTheShardingType() throws {
        let table = try TableSpec(name: "t", rows: 1000, dim: 16, poolingFactor: 8, distribution: .uniform)
        let block = NeuroShardCostModel.Piece(table, shard: EmbeddingShardSpec(table: 0, columns: 0..<8, rows: 0..<250))
        #expect(block.table.rows == 250 && block.table.dim == 16 && block.table.poolingFactor == 2 && block.columns == 8 && block.rowCut)
        let whole = NeuroShardCostModel.Piece(table, shard: EmbeddingShardSpec(table: 0, columns: 0..<16))
        #expect(whole.table == table && !whole.rowCut)
        let features = NeuroShardCostModel.features(block, batchSize: 512)
        #expect(features.count == NeuroShardCostModel.featureCount && Array(features.suffix(3)) == [Float(16) / 128, 1, 1])
        #expect(Array(NeuroShardCostModel.features(whole, batchSize: 512).suffix(2)) == [0, 0])
    }

    /// A small model fit to records made by a known cost law.
    static func fittedModel() throws -> (NeuroShardCostModel, [NeuroShardCostModel.Record]) {
        let pool = try TablePool.generate(count: 60, seed: 9)
        var random = SplitMix64(seed: 9)
        let records = (0..<300).map { _ in
            let chosen = (0..<(1 + random.nextInt(below: 6))).map { _ in pool[random.nextInt(below: pool.count)] }
            let work = chosen.reduce(0.0) { $0 + Double($1.dim) * $1.poolingFactor } / 200
            return NeuroShardCostModel.Record(tables: chosen, columns: chosen.map(\.dim), forward: 0.05 + work, backward: 0.08 + 1.5 * work)
        }
        let model = NeuroShardCostModel(batchSize: 512, seed: 1)
        return (model, records)
    }

    @Test func trainingTheCostModelLowersItsError() throws {
        let (model, records) = try Self.fittedModel()
        let before = model.medianError(records)
        let losses = model.train(records, epochs: 60, seed: 1)
        #expect(losses.last! < losses.first! / 10)
        #expect(model.medianError(records) < before / 3)
    }

    /// The planner's ranks hold more tables than any measured set; on an additive cost law the
    /// model must carry over to them.
    @Test func costModelCarriesOverToSetsLargerThanAnyItWasTrainedOn() throws {
        let pool = try TablePool.generate(count: 60, seed: 9)
        var random = SplitMix64(seed: 9)
        func records(_ sizes: ClosedRange<Int>, _ count: Int) -> [NeuroShardCostModel.Record] {
            (0..<count).map { _ in
                let chosen = (0..<(sizes.lowerBound + random.nextInt(below: sizes.count))).map { _ in pool[random.nextInt(below: pool.count)] }
                let work = chosen.reduce(0.0) { $0 + 0.01 + Double($1.dim) * $1.poolingFactor / 200 }
                return NeuroShardCostModel.Record(tables: chosen, columns: chosen.map(\.dim), forward: work, backward: 1.5 * work)
            }
        }
        let model = NeuroShardCostModel(batchSize: 512, seed: 1)
        model.train(records(1...6, 400), epochs: 80, seed: 1)
        #expect(model.medianError(records(18...24, 40)) < 0.1)
    }

    /// An ensemble's networks are the single models its seeds would train: its prediction is
    /// their mean, and the search's penalty adds `uncertaintyWeight` standard deviations of their
    /// totals (for two networks, half their difference).
    @Test func ensemblePredictsItsNetworksMeanAndPenalizesTheirSpread() throws {
        let (_, records) = try Self.fittedModel()
        let singles = [UInt64(1), 2].map { NeuroShardCostModel(batchSize: 512, seed: $0) }
        for single in singles { single.train(records, epochs: 10, seed: single === singles[0] ? 1 : 2) }
        let ensemble = NeuroShardCostModel(batchSize: 512, members: 2, uncertaintyWeight: 1.5, seed: 1)
        ensemble.train(records, epochs: 10, seed: 1)
        var penalizedAbove = 0
        for record in records.prefix(40) {
            let pieces = record.pieces
            let totals = singles.map { let p = $0.predict(pieces, batch: 512); return p.forward + p.backward }
            let mean = ensemble.predict(pieces, batch: 512)
            #expect(abs(mean.forward + mean.backward - (totals[0] + totals[1]) / 2) <= 1e-5 * (totals[0] + totals[1]))
            let penalized = ensemble.predict(pieces, batch: 512, penalized: true)
            let expected = (totals[0] + totals[1]) / 2 + 1.5 * abs(totals[0] - totals[1]) / 2
            #expect(abs(penalized.forward + penalized.backward - expected) <= 1e-5 * expected)
            if penalized.forward + penalized.backward > mean.forward + mean.backward { penalizedAbove += 1 }
        }
        #expect(penalizedAbove > 0)
        try withTemporaryFile("") { path in
            try ensemble.write(to: path, heldOutMedianError: nil, unseenTablesMedianError: nil)
            let read = try NeuroShardCostModel.read(path)
            #expect(read.members == 2 && read.uncertaintyWeight == 1.5 && read.medianError(records) == ensemble.medianError(records))
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            json["uncertaintyWeight"] = -1
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            #expect(throws: PlanError("\(path): the uncertainty weight -1.0 is not a number of standard deviations, 0 or more")) {
                try NeuroShardCostModel.read(path)
            }
            json["uncertaintyWeight"] = 1.5
            json["members"] = 3
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            do { _ = try NeuroShardCostModel.read(path); Issue.record("a file with too few parameters for its networks was read") } catch {
                #expect("\(error)".hasPrefix("\(path): ") && "\(error)".contains("parameters for 3 networks"), "\(error)")
            }
        }
    }

    @Test func costModelFilesRoundTripAndRefuseOtherVersions() throws {
        let (model, records) = try Self.fittedModel()
        model.train(records, epochs: 5, seed: 1)
        try withTemporaryFile("") { path in
            try model.write(to: path, heldOutMedianError: nil, unseenTablesMedianError: nil)
            let read = try NeuroShardCostModel.read(path)
            #expect(read.medianError(records) == model.medianError(records))
            let version = NeuroShardCostModel.formatVersion
            let text = try String(contentsOfFile: path, encoding: .utf8)
                .replacingOccurrences(of: "\"formatVersion\" : \(version)", with: "\"formatVersion\" : 9")
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: PlanError("\(path): cost model format version 9; this build reads version \(version)")) {
                try NeuroShardCostModel.read(path)
            }
        }
    }

    /// Layer lists cut short, grown or emptied by hand: one line each, never an index out of
    /// range or a network larger than the machine.
    @Test(arguments: [[25, 64], [25, 64, 32, 8], [], [25, 64, 1_000_000_000]])
    func costModelFilesOfAnotherShapeAreRefused(tableSizes: [Int]) throws {
        let (model, _) = try Self.fittedModel()
        try withTemporaryFile("") { path in
            try model.write(to: path, heldOutMedianError: nil, unseenTablesMedianError: nil)
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            json["tableSizes"] = tableSizes
            json["headSizes"] = [(tableSizes.last ?? 0) + 2, 64, 2]
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            #expect(throws: PlanError.self) { try NeuroShardCostModel.read(path) }
            do { _ = try NeuroShardCostModel.read(path) } catch {
                #expect("\(error)".contains("are not a cost model this build reads"), "\(error)")
            }
        }
    }

    @Test func neuroShardPlansFitAndBeamSearchNeverLosesToTableWise() throws {
        let (model, records) = try Self.fittedModel()
        model.train(records, epochs: 60, seed: 1)
        let communication = CommunicationCostModel(tables: [4: [(bytes: 8, microseconds: 5), (bytes: 1_048_576, microseconds: 300)]])
        let task = try Self.task(ranks: 4, memoryFraction: 0.6)
        var tableWise = NeuroShardPlanner(model: model, communication: communication)
        tableWise.depth = 0
        let searched = NeuroShardPlanner(model: model, communication: communication)
        let prediction = NeuroShardPrediction(model: model, communication: communication, batchSize: task.batchSize)
        let first = try tableWise.plan(task), best = try searched.plan(task)
        for plan in [first, best] { try plan.validate(tables: task.tables, ranks: 4, memoryPerRank: task.memoryPerRank) }
        #expect(try prediction.cost(of: best, tables: task.tables).total <= prediction.cost(of: first, tables: task.tables).total + 1e-9)
    }

    /// The learned planners replicate a table only where their model predicts a cheaper step,
    /// and cut a table no rank can hold into row blocks.
    @Test func neuroShardReplicatesWherePredictedCheaperAndCutsRowsWhereItMust() throws {
        let (model, records) = try Self.fittedModel()
        model.train(records, epochs: 60, seed: 1)
        let communication = CommunicationCostModel(tables: [2: [(bytes: 8, microseconds: 5), (bytes: 1_048_576, microseconds: 300)]])
        let planner = NeuroShardPlanner(model: model, communication: communication)
        var task = try Self.task()
        let prediction = NeuroShardPrediction(model: model, communication: communication, batchSize: task.batchSize)
        let without = try planner.plan(task)
        task.dataParallelBytes = 64 << 10
        let with = try planner.plan(task)
        try with.validate(tables: task.tables, ranks: 2, memoryPerRank: task.memoryPerRank)
        #expect(try prediction.cost(of: with, tables: task.tables).total <= prediction.cost(of: without, tables: task.tables).total + 1e-9)
        #expect(with.replicatedTables(tables: task.tables).allSatisfy { task.bytes(ofTable: $0) <= 64 << 10 })
        task.dataParallelBytes = nil
        task.memoryPerRank = task.bytes(ofTable: 0) - 1
        let cut = try planner.plan(task)
        try cut.validate(tables: task.tables, ranks: 2, memoryPerRank: task.memoryPerRank)
        #expect(cut.placements[0].shards.allSatisfy { $0.rows != nil } && Set(cut.placements[0].shards.map(\.rank)).count == 2)
    }
}

/// Plans in TorchRec's vocabulary.
@Suite struct TorchRecExportTests {
    @Test func everyShardingTypeExportsWithOffsetsAndSizes() throws {
        let tables = try PlannerTests.tables()
        var plan = ShardingPlan.roundRobin(tables, ranks: 2)
        let t0 = tables[0], t2 = tables[2]
        plan.placements[0].shards = [.init(columns: 0..<t0.dim, rows: 0..<100, rank: 1), .init(columns: 0..<t0.dim, rows: 100..<t0.rows, rank: 0)]
        plan.placements[1].shards = [.init(columns: 0..<8, rank: 0), .init(columns: 8..<tables[1].dim, rank: 1)]
        plan.placements[2].shards = [.init(columns: 0..<8, rows: 0..<10, rank: 0), .init(columns: 0..<8, rows: 10..<t2.rows, rank: 1),
                                     .init(columns: 8..<t2.dim, rank: 1)]
        plan.placements[3] = .replicated(tables[3].name)
        let exported = try plan.torchRec(tables: tables).tables
        let rowWise: [TorchRecPlan.ShardMetadata] = [.init(shardOffsets: [0, 0], shardSizes: [100, t0.dim], placement: "rank:1/cpu"),
                                                     .init(shardOffsets: [100, 0], shardSizes: [t0.rows - 100, t0.dim], placement: "rank:0/cpu")]
        #expect(exported["t0"] == TorchRecPlan.ParameterSharding(shardingType: "row_wise", computeKernel: "fused", ranks: [1, 0], shardingSpec: rowWise))
        #expect(exported["t1"]?.shardingType == "column_wise" && exported["t1"]?.shardingSpec?.map(\.shardOffsets) == [[0, 0], [0, 8]])
        #expect(exported["t2"]?.shardingType == "grid_shard" && exported["t2"]?.ranks == [0, 1, 1])
        #expect(exported["t3"] == TorchRecPlan.ParameterSharding(shardingType: "data_parallel", computeKernel: "dense", ranks: [0, 1], shardingSpec: nil))
        #expect(exported["t4"]?.shardingType == "table_wise" && exported["t4"]?.shardingSpec?.first?.shardSizes == [tables[4].rows, tables[4].dim])
        try withTemporaryFile("") { path in
            try plan.torchRec(tables: tables).write(to: path)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains(#""sharding_spec" : null"#) && text.contains(#""placement" : "rank:1/cpu""#))
        }
    }

    @Test func blocksTorchRecCannotExpressNameTheTable() throws {
        let tables = try PlannerTests.tables()
        var plan = ShardingPlan.roundRobin(tables, ranks: 2)
        let t2 = tables[2]
        plan.placements[2].shards = [.init(columns: 0..<8, rows: 0..<10, rank: 0), .init(columns: 0..<t2.dim, rows: 10..<t2.rows, rank: 1),
                                     .init(columns: 8..<t2.dim, rows: 0..<10, rank: 1)]
        try plan.validate(tables: tables)
        #expect(throws: PlanError("table t2: its blocks cut columns 0..<8 and 0..<16 across each other; TorchRec's grid_shard needs column pieces each cut into row ranges")) {
            try plan.torchRec(tables: tables)
        }
    }
}
