import Foundation
import Models
import Sharding
import Testing

/// Table specs, reuse bins, the pool and its splits.
@Suite struct TableSpecTests {
    @Test func expectedBinsOfUniformAccessMatchCountedDraws() throws {
        let table = try TableSpec(name: "t", rows: 4000, dim: 8, poolingFactor: 1, distribution: .uniform)
        let access = table.sampler(seed: 1)
        var random = SplitMix64(seed: 2)
        var uses = [Int](repeating: 0, count: table.rows)
        for _ in 0..<ReuseBins.windowSamples { uses[access.next(&random)] += 1 }
        var counted = [Double](repeating: 0, count: ReuseBins.count)
        for count in uses where count > 0 { counted[ReuseBins.bin(ofCount: count)] += 1 }
        let distinct = counted.reduce(0, +)
        for bin in 0..<ReuseBins.count {
            #expect(abs(counted[bin] / distinct - table.bins.fractions[bin]) < 0.03, "bin \(bin)")
        }
    }

    @Test func zipfBinsPutMoreRowsInTheTailsThanUniform() throws {
        let uniform = try TableSpec(name: "u", rows: 100_000, dim: 8, poolingFactor: 10, distribution: .uniform)
        let zipf = try TableSpec(name: "z", rows: 100_000, dim: 8, poolingFactor: 10, distribution: .zipf(1.1))
        #expect(abs(zipf.bins.fractions.reduce(0, +) - 1) < 1e-9)
        #expect(zipf.bins.fractions[0] > uniform.bins.fractions[0])
        #expect(zipf.bins.fractions[10...].reduce(0, +) > uniform.bins.fractions[10...].reduce(0, +))
    }

    @Test(arguments: [
        (#"[{"name": "a", "dim": 4, "pooling": 1, "distribution": "uniform"}]"#, #"missing field "rows" in [0]"#),
        (#"[{"name": "a", "rows": 0, "dim": 4, "pooling": 1, "distribution": "uniform"}]"#, "table a: rows must be in 1...1099511627776 (2^40), found 0"),
        (#"[{"name": "a", "rows": 9, "dim": -4, "pooling": 1, "distribution": "uniform"}]"#, "table a: dim must be in 1...65536, found -4"),
        (#"[{"name": "a", "rows": 4611686018427387904, "dim": 4, "pooling": 1, "distribution": "uniform"}]"#,
         "table a: rows must be in 1...1099511627776 (2^40), found 4611686018427387904"),
        (#"[{"name": "a", "rows": 9, "dim": 4, "pooling": 1e300, "distribution": "uniform"}]"#, "table a: pooling must be in 0...1000000, found 1e+300"),
        (#"[{"name": "a", "rows": 9, "dim": 4, "pooling": 1, "distribution": "zipf:x"}]"#,
         "table a: index distribution 'zipf:x': expected uniform or zipf:S with S > 0"),
        (#"[{"name": "a", "rows": 9, "dim": 4, "pooling": 1, "bins": [0.5]}]"#, "table a: reuse bins: expected 17 fractions, found 1"),
        (#"[{"name": "a", "rows": 9, "dim": 4, "pooling": 1, "bins": [0.5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]"#,
         "table a: reuse bins sum to 0.5000, not 1"),
        (#"[{"name": "a", "rows": 9, "dim": 4, "pooling": 1}]"#, #"table a: needs "bins" or "distribution""#),
    ])
    func badTableSpecsNameTheTableAndTheField(json: String, message: String) throws {
        try withTemporaryFile(json) { path in
            #expect(throws: PlanError("\(path): \(message)")) { try TableSpecFile.read(path) }
        }
    }

    @Test func specsRoundTripThroughJSON() throws {
        let pool = try TablePool.generate(count: 20, seed: 3)
        try withTemporaryFile("") { path in
            try TableSpecFile.write(pool, to: path)
            #expect(try TableSpecFile.read(path) == pool)
        }
    }

    @Test func poolResemblesTheTracesAndIsDeterministic() throws {
        let pool = try TablePool.generate(count: 400, seed: 0)
        #expect(try TablePool.generate(count: 400, seed: 0) == pool)
        let rows = pool.map(\.rows), pooling = pool.map(\.poolingFactor)
        #expect(rows.min()! < 300 && rows.max()! > 300_000 && rows.allSatisfy { (100...1_000_000).contains($0) })
        let meanPooling = pooling.reduce(0, +) / Double(pool.count)
        #expect((11...19).contains(meanPooling) && pooling.max()! > 60)
        #expect(Set(pool.map(\.dim)) == [4, 8, 16, 32, 64, 128])
        let (train, heldOut) = TablePool.split(pool, seed: 0)
        #expect(Set(train.map(\.name)).isDisjoint(with: heldOut.map(\.name)) && train.count + heldOut.count == pool.count)
    }

    @Test func heavyTailedPoolHasHugeAndTinyTablesAndLongPooling() throws {
        let pool = try TablePool.generate(count: 800, seed: 0, shape: .heavyTailed)
        #expect(try TablePool.generate(count: 800, seed: 0, shape: .heavyTailed) == pool)
        let huge = pool.filter { $0.rows >= 1_000_000 }, tiny = pool.filter { $0.rows <= 1_000 }
        #expect((20...60).contains(huge.count) && huge.allSatisfy { $0.rows <= 4_000_000 && (16...64).contains($0.dim) })
        #expect((400...560).contains(tiny.count) && tiny.contains { $0.rows < 100 })
        let pooling = pool.map(\.poolingFactor)
        #expect(pooling.max()! > 100 && pooling.max()! <= 300 && pooling.filter { $0 == 1 }.count > pool.count / 4)
        // The huge tables, 5% of the pool, hold most of its bytes.
        let bytes = { (tables: [TableSpec]) in tables.reduce(0) { $0 + $1.rows * $1.dim } }
        #expect(Double(bytes(huge)) > 0.6 * Double(bytes(pool)))
    }

    /// The rows a batch reads, expected from the reuse bins alone, against the rows of drawn batches.
    @Test func expectedRowsTouchedMatchDrawnBatches() throws {
        for table in try TablePool.generate(count: 24, seed: 5) {
            let counted = Set(TableSpec.batch([table], batchSize: 512, seed: 1).indices).count
            let expected = table.bins.expectedRowsTouched(rows: table.rows, poolingFactor: table.poolingFactor, batchSize: 512)
            #expect(abs(expected / Double(counted) - 1) < 0.25, "\(table.name): \(table.rows) rows, pooling \(table.poolingFactor): expected \(expected), counted \(counted)")
        }
    }

    @Test func tasksFollowThePresetAndFitTheirLargestTable() throws {
        let pool = try TablePool.generate(count: 200, seed: 1)
        let tasks = try TaskPreset.named("shard-mid").draw(count: 5, from: pool, batchSize: 256, seed: 1)
        for task in tasks {
            #expect(task.ranks == 4 && (30...60).contains(task.tables.count))
            let total = task.tables.indices.reduce(0) { $0 + task.bytes(ofTable: $1) }
            #expect(abs(Double(task.memoryPerRank) - 0.35 * Double(total)) <= 1)
            #expect(task.tables.indices.allSatisfy { task.bytes(ofTable: $0) <= task.memoryPerRank })
        }
    }
}

/// Runs `body` with the path of a temporary file holding `text`, removed afterwards.
@discardableResult
func withTemporaryFile<R>(_ text: String, _ body: (String) throws -> R) throws -> R {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sharding-\(UUID().uuidString).json").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Synthetic traffic drawn for a spec reproduces its pooling factor and its reuse bins.
@Suite struct TableTrafficTests {
    /// Measured reuse bins and mean bag length of `table`'s traffic over one reference window.
    static func measure(_ table: TableSpec, seed: UInt64) -> (bins: [Double], pooling: Double) {
        let sampler = table.sampler(seed: seed)
        var random = SplitMix64(seed: seed, stream: "measure")
        var uses = [Int](repeating: 0, count: table.rows), lookups = 0
        for _ in 0..<ReuseBins.windowSamples {
            for _ in 0..<sampler.bagLength(&random) {
                uses[sampler.next(&random)] += 1
                lookups += 1
            }
        }
        var counted = [Double](repeating: 0, count: ReuseBins.count)
        for count in uses where count > 0 { counted[ReuseBins.bin(ofCount: count)] += 1 }
        let distinct = max(counted.reduce(0, +), 1)
        return (counted.map { $0 / distinct }, Double(lookups) / Double(ReuseBins.windowSamples))
    }

    /// Half the summed absolute difference of two bin vectors: the share of rows in the wrong bin.
    static func distance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + abs($1.0 - $1.1) } / 2 }

    @Test func poolingFactorsAreMetWithin2Percent() throws {
        for (pooling, bags) in [(1.0, TableTraffic.BagSizes.fixed), (3.5, .random), (17.3, .fixed), (60, .random)] {
            var table = try TableSpec(name: "p", rows: 50_000, dim: 8, poolingFactor: pooling, distribution: .zipf(1.05))
            table.bagSizes = bags
            let measured = Self.measure(table, seed: 1).pooling
            #expect(abs(measured - pooling) <= 0.02 * pooling, "pooling \(pooling) (\(bags)): measured \(measured)")
        }
    }

    /// Tables given by their bins alone (the pool's shapes, distributions dropped) are drawn
    /// with at most 10% of their distinct rows in another bin than the spec's, over one
    /// reference window (most within 3%).
    @Test func reuseBinsAreMetWithinTheStatedTolerance() throws {
        let pool = try TablePool.generate(count: 24, seed: 5)
        var worst = 0.0
        for spec in pool {
            let table = try TableSpec(name: spec.name, rows: spec.rows, dim: spec.dim, poolingFactor: spec.poolingFactor, bins: spec.bins)
            let measured = Self.measure(table, seed: 2).bins
            let distance = Self.distance(measured, table.bins.fractions)
            worst = max(worst, distance)
        }
        #expect(worst <= 0.10, "worst share of rows in another bin: \(worst)")
    }

    /// A batch's later rounds are other bags of the same traffic: round 0 is the batch as it
    /// always was, and every round meets the same hot rows.
    @Test func batchRoundsDrawOtherBagsOverTheSameHotRows() throws {
        let table = try TableSpec(name: "hot", rows: 100_000, dim: 8, poolingFactor: 20, distribution: .zipf(1.2))
        let first = TableSpec.batch([table], batchSize: 256, seed: 3), again = TableSpec.batch([table], batchSize: 256, seed: 3, round: 0)
        let later = TableSpec.batch([table], batchSize: 256, seed: 3, round: 1)
        #expect(first.indices == again.indices && first.indices != later.indices)
        func hottest(_ batch: BagBatch) -> Int32 {
            Dictionary(batch.indices.map { ($0, 1) }, uniquingKeysWith: +).max { $0.value < $1.value }!.key
        }
        #expect(hottest(first) == hottest(later))
    }
}
