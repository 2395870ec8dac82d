import Foundation
import Models
import TestSupport
import Testing

/// Runs `body` with the path of a TSV file of `lines`, removed afterwards.
func withTSV<R>(_ lines: [String], _ body: (String) throws -> R) throws -> R {
    try withTemporaryDirectory("criteo") { directory in
        let path = directory.appendingPathComponent("data.tsv").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return try body(path)
    }
}

/// One Criteo line: label, 13 integers, 26 categoricals.
func criteoLine(label: String = "1", integers: [String] = (1...13).map(String.init),
                categoricals: [String] = (0..<26).map { String(format: "%08x", 0x1000 + $0) }) -> String {
    ([label] + integers + categoricals).joined(separator: "\t")
}

@Suite struct CriteoReaderTests {
    static let rows = [Int](repeating: 1000, count: 26)
    static let sample = SharedDatasets.directory("criteo-sample").map { $0 + "/criteo-sample.tsv" }

    @Test func parsesEmptyNegativeAndHexFields() throws {
        var integers = (1...13).map(String.init)
        integers[0] = ""
        integers[1] = "-3"
        integers[2] = "7"
        var categoricals = (0..<26).map { String(format: "%08x", 0x1000 + $0) }
        categoricals[3] = ""
        categoricals[4] = "FFFFFFFF"
        try withTSV([criteoLine(label: "0", integers: integers, categoricals: categoricals)]) { path in
            let reader = try CriteoTSVReader(path: path, tableRows: Self.rows)
            let batch = try #require(try reader.nextBatch(size: 1))
            #expect(batch.labels == [0])
            #expect(batch.dense[0] == 0 && batch.dense[1] == 0 && batch.dense[2] == Float(log1p(7.0)))
            #expect(batch.bags.indices[0] == Int32(0x1000 % 1000))
            #expect(batch.bags.indices[3] == 0, "an empty categorical is row 0")
            #expect(batch.bags.indices[4] == Int32(0xFFFF_FFFF % 1000))
        }
    }

    @Test(arguments: [
        (criteoLine() + "\textra", "expected 40 tab-separated fields (label, 13 integers, 26 categoricals), found 41"),
        (criteoLine(label: "2"), "label '2' is not 0 or 1"),
        (criteoLine(integers: ["12x"] + (2...13).map(String.init)), "I1 '12x' is not an integer"),
        (criteoLine(categoricals: ["zz00ff00"] + (1..<26).map { String(format: "%08x", $0) }), "C1 'zz00ff00' is not a hexadecimal hash"),
    ])
    func badRowsNameFileAndLine(line: String, reason: String) throws {
        try withTSV([criteoLine(), line, criteoLine()]) { path in
            let failing = try CriteoTSVReader(path: path, tableRows: Self.rows)
            #expect(throws: DatasetError(path: path, line: 2, reason: reason)) { try failing.nextBatch(size: 3) }
            let skipping = try CriteoTSVReader(path: path, tableRows: Self.rows, onBadRow: .skip)
            var skipped: [DatasetError] = []
            skipping.onSkip = { skipped.append($0) }
            let batch = try #require(try skipping.nextBatch(size: 2))
            #expect(batch.count == 2 && skipping.skippedRows == 1 && skipped.map(\.line) == [2])
        }
    }

    @Test func wrongTableCountAndMissingFileAreClearErrors() throws {
        #expect(throws: DatasetError(path: "/no/such.tsv", line: 0, reason: "cannot open: No such file or directory")) {
            try CriteoTSVReader(path: "/no/such.tsv", tableRows: Self.rows)
        }
        #expect(throws: DatasetError.self) { try CriteoTSVReader(path: "/no/such.tsv", tableRows: [10]) }
    }

    @Test func wrapsAroundAndHoldsOutEveryNthLine() throws {
        try withTSV((0..<10).map { criteoLine(label: $0 % 2 == 0 ? "1" : "0") }) { path in
            let reader = try CriteoTSVReader(path: path, tableRows: Self.rows, holdoutEvery: 5)
            let first = try #require(try reader.nextBatch(size: 8))
            #expect(first.count == 8 && reader.epoch == 0 && reader.heldOut.count == 1)
            let second = try #require(try reader.nextBatch(size: 8))
            #expect(second.count == 8 && reader.epoch == 1 && reader.heldOut.count == 2, "held-out lines are collected once")
        }
    }

    @Test(.enabled(if: sample != nil, "needs ../shared/datasets/criteo-sample beside the clone; absent here"))
    func theSampleTrainsEndToEnd() throws {
        let reader = try CriteoTSVReader(path: Self.sample!, tableRows: Self.rows, holdoutEvery: 10)
        let tables = Self.rows.enumerated().map { EmbeddingTableSpec(name: "C\($0.offset + 1)", rows: $0.element, dim: 8) }
        let dlrm = DLRM(config: try DLRMConfig(bottomMLP: [13, 16, 8], topMLP: [16, 1], tables: tables), seed: 0)
        var losses: [Double] = []
        var positives: Float = 0
        for _ in 0..<30 {
            let batch = try #require(try reader.nextBatch(size: 60))
            positives += reader.epoch == 0 ? batch.labels.reduce(0, +) : 0
            losses.append(dlrm.trainStep(batch, learningRate: 0.1))
        }
        #expect(reader.heldOut.count == 20 && reader.skippedRows == 0)
        #expect(losses.allSatisfy { $0.isFinite })
        #expect(losses.suffix(5).reduce(0, +) < losses.prefix(5).reduce(0, +), "loss \(losses)")
        let heldOut = reader.heldOut.batch()
        let metrics = BinaryMetrics(logits: dlrm.predict(heldOut), labels: heldOut.labels)
        #expect(metrics.loss.isFinite)
    }
}

@Suite struct SyntheticClicksTests {
    @Test func anySliceOfABatchIsTheSameSamples() throws {
        let (_, data) = try smallDLRM()
        let whole = data.batch(samples: 0..<40)
        #expect(data.batch(samples: 10..<25) == whole.samples(10..<25))
    }

    @Test func zipfConcentratesOnFewRows() throws {
        let tables = [EmbeddingTableSpec(name: "t", rows: 100_000, dim: 4)]
        let config = try DLRMConfig(bottomMLP: [2, 4], topMLP: [1], tables: tables)
        func distinctShare(_ distribution: IndexDistribution) throws -> Double {
            let data = try SyntheticClicks(config: config, pooling: [10], distribution: distribution, seed: 4)
            let indices = data.batch(samples: 0..<1000).bags.indices
            return Double(Set(indices).count) / Double(indices.count)
        }
        #expect(try distinctShare(.uniform) > 0.9)
        #expect(try distinctShare(.zipf(1.2)) < 0.3)
    }

    @Test func zipfFollowsItsLaw() {
        let sampler = ZipfSampler(n: 1000, exponent: 1.0)
        var random = SplitMix64(seed: 1)
        var counts = [Int](repeating: 0, count: 4)
        for _ in 0..<200_000 {
            let k = sampler.next(&random)
            if k <= 3 { counts[k] += 1 }
        }
        // P(1) / P(2) = 2 and P(1) / P(3) = 3 for s = 1.
        #expect(abs(Double(counts[1]) / Double(counts[2]) - 2) < 0.1)
        #expect(abs(Double(counts[1]) / Double(counts[3]) - 3) < 0.15)
    }

    @Test(arguments: ["13-0-64", "13--64", "13-x", ""])
    func badSpecsAreConfigErrors(spec: String) {
        #expect(throws: ConfigError.self) { try DLRMConfig.parseSizes(spec, name: "--arch-mlp-bot") }
    }

    @Test func mismatchedEmbeddingWidthIsAConfigError() {
        let tables = [EmbeddingTableSpec(name: "t", rows: 10, dim: 16)]
        #expect(throws: ConfigError.self) { try DLRMConfig(bottomMLP: [13, 64, 32], topMLP: [1], tables: tables) }
        #expect(throws: ConfigError.self) { try DLRMConfig(bottomMLP: [13, 16], topMLP: [8, 2], tables: tables) }
    }
}
