import Foundation
import Models
import TestSupport
import Testing

/// Criteo data as it comes: many files, gzip, the preprocessed binary format, rank slices.
@Suite struct CriteoDataTests {
    static let rows = [Int](repeating: 1000, count: 26)

    /// `count` distinct lines: labels, counts (some empty or negative) and hashes vary per line.
    static func lines(_ count: Int, seed: UInt64 = 1) -> [String] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let integers = (0..<13).map { j -> String in
                let value = random.next() % 5000
                return value % 7 == 0 ? "" : j == 1 ? "-\(value % 3)" : "\(value)"
            }
            let categoricals = (0..<26).map { _ -> String in
                let value = random.next()
                return value % 11 == 0 ? "" : String(format: "%08x", UInt32(truncatingIfNeeded: value))
            }
            return criteoLine(label: random.next() % 4 == 0 ? "1" : "0", integers: integers, categoricals: categoricals)
        }
    }

    /// Writes `lines` as a TSV file at `path`.
    static func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Compresses `path` with the system gzip into `path.gz`, keeping `path`.
    static func gzip(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-kf", path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return path + ".gz"
    }

    /// Every batch of `size` a reader opened by `open(slice)` gives in `batches` reads, for
    /// each slice of `ranks`, put back together sample by sample.
    static func globalBatches(ranks: Int, size: Int, batches: Int, _ open: (SampleSlice) throws -> any ClickBatchReader) throws -> [ClickBatch] {
        let readers = try (0..<ranks).map { try open(SampleSlice(rank: $0, ranks: ranks)) }
        return try (0..<batches).map { _ in
            let parts = try readers.map { try #require(try $0.nextBatch(size: size)) }
            return concatenate(parts)
        }
    }

    /// The samples of `parts`, one after another, as one batch.
    static func concatenate(_ parts: [ClickBatch]) -> ClickBatch {
        let n = parts.reduce(0) { $0 + $1.count }
        var indices: [Int32] = []
        for t in 0..<26 { for part in parts { indices += part.bags.indices[t * part.count ..< (t + 1) * part.count] } }
        return ClickBatch(dense: parts.flatMap(\.dense), bags: BagBatch(batchSize: n, features: 26, offsets: (0...(n * 26)).map(Int32.init), indices: indices),
                          labels: parts.flatMap(\.labels))
    }

    @Test func tsvGzipAndBinaryGiveTheSameBatchesOnAnyRankCount() throws {
        try withTemporaryDirectory("criteo-forms") { directory in
            let tsv = directory.appendingPathComponent("day_0.tsv").path
            try Self.write(Self.lines(1000), to: tsv)
            let gz = try Self.gzip(tsv)
            let binary = directory.appendingPathComponent("bin").path
            try CriteoPreprocessor(inputs: DataInputs([gz]), out: binary, categoricals: .hashed, tableRows: Self.rows, onBadRow: .fail).run()
            // 5 batches of 240 from 900 training samples: the reading wraps around once.
            let reference = try Self.globalBatches(ranks: 1, size: 240, batches: 5) {
                try CriteoTSVReader(path: tsv, tableRows: Self.rows, holdoutEvery: 10, slice: $0)
            }
            for ranks in [1, 2, 4] {
                #expect(try Self.globalBatches(ranks: ranks, size: 240, batches: 5) {
                    try CriteoTSVReader(path: gz, tableRows: Self.rows, holdoutEvery: 10, slice: $0)
                } == reference, "gzip on \(ranks) ranks")
                #expect(try Self.globalBatches(ranks: ranks, size: 240, batches: 5) {
                    try CriteoBinaryReader(directory: binary, holdoutEvery: 10, slice: $0)
                } == reference, "binary on \(ranks) ranks")
            }
            let tsvReader = try CriteoTSVReader(path: tsv, tableRows: Self.rows, holdoutEvery: 10)
            let binaryReader = try CriteoBinaryReader(directory: binary, holdoutEvery: 10)
            for _ in 0..<5 { _ = try tsvReader.nextBatch(size: 240); _ = try binaryReader.nextBatch(size: 240) }
            #expect(tsvReader.heldOut.count == 100 && tsvReader.heldOut.batch() == binaryReader.heldOut.batch())
            #expect(tsvReader.epoch == 1 && binaryReader.epoch == 1)
        }
    }

    @Test func resumingSkipsToTheSameBatch() throws {
        try withTemporaryDirectory("criteo-skip") { directory in
            let tsv = directory.appendingPathComponent("data.tsv").path
            try Self.write(Self.lines(500), to: tsv)
            let binary = directory.appendingPathComponent("bin").path
            try CriteoPreprocessor(inputs: DataInputs([tsv]), out: binary, categoricals: .hashed, tableRows: Self.rows, onBadRow: .fail).run()
            let straight = try CriteoTSVReader(path: tsv, tableRows: Self.rows, holdoutEvery: 7)
            for _ in 0..<3 { _ = try straight.nextBatch(size: 64) }
            let expected = try straight.nextBatch(size: 64)
            for reader in [try CriteoTSVReader(path: tsv, tableRows: Self.rows, holdoutEvery: 7) as any ClickBatchReader,
                           try CriteoBinaryReader(directory: binary, holdoutEvery: 7)] {
                try reader.skip(batches: 3, size: 64)
                #expect(try reader.nextBatch(size: 64) == expected)
                #expect(reader.heldOut.count == straight.heldOut.count)
            }
        }
    }

    @Test func filesAndGlobsAreReadInNaturalOrder() throws {
        try withTemporaryDirectory("criteo-glob") { directory in
            let all = Self.lines(30)
            for (day, part) in [(2, all[0..<10]), (10, all[10..<20]), (11, all[20..<30])] {
                try Self.write(Array(part), to: directory.appendingPathComponent("day_\(day)").path)
            }
            let inputs = try DataInputs([directory.appendingPathComponent("day_*").path])
            #expect(inputs.paths.map { URL(fileURLWithPath: $0).lastPathComponent } == ["day_2", "day_10", "day_11"])
            let whole = directory.appendingPathComponent("whole.tsv").path
            try Self.write(all, to: whole)
            let fromDays = try CriteoTSVReader(inputs: inputs, tableRows: Self.rows).nextBatch(size: 30)
            #expect(try fromDays == CriteoTSVReader(path: whole, tableRows: Self.rows).nextBatch(size: 30))
            #expect(throws: DatasetError(path: directory.path + "/none*", line: 0, reason: "no file matches this pattern")) {
                try DataInputs([directory.path + "/none*"])
            }
            #expect(throws: DatasetError.self) { try DataInputs(["-", whole]) }
        }
    }

    @Test func gzipMembersTruncationAndOtherCompressions() throws {
        try withTemporaryDirectory("criteo-gzip") { directory in
            let first = directory.appendingPathComponent("a.tsv").path, second = directory.appendingPathComponent("b.tsv").path
            let lines = Self.lines(400)
            try Self.write(Array(lines[..<200]), to: first)
            try Self.write(Array(lines[200...]), to: second)
            // Two gzip members back to back, as `cat a.gz b.gz` makes: both are read.
            var joined = try Data(contentsOf: URL(fileURLWithPath: Self.gzip(first)))
            joined += try Data(contentsOf: URL(fileURLWithPath: Self.gzip(second)))
            let members = directory.appendingPathComponent("joined.gz").path
            try joined.write(to: URL(fileURLWithPath: members))
            let whole = directory.appendingPathComponent("whole.tsv").path
            try Self.write(lines, to: whole)
            #expect(try CriteoTSVReader(path: members, tableRows: Self.rows).nextBatch(size: 400)
                    == CriteoTSVReader(path: whole, tableRows: Self.rows).nextBatch(size: 400))

            let cut = directory.appendingPathComponent("cut.gz").path
            try joined.prefix(joined.count / 3).write(to: URL(fileURLWithPath: cut))
            #expect(throws: DatasetError(path: cut, line: 0, reason: "truncated gzip stream: the data ends at byte \(joined.count / 3) inside a compressed member")) {
                try CriteoTSVReader(path: cut, tableRows: Self.rows).nextBatch(size: 400)
            }
            var damaged = joined
            for i in 200..<260 { damaged[i] ^= 0x5a }
            let corrupt = directory.appendingPathComponent("corrupt.gz").path
            try damaged.write(to: URL(fileURLWithPath: corrupt))
            let error = #expect(throws: DatasetError.self) { try CriteoTSVReader(path: corrupt, tableRows: Self.rows).nextBatch(size: 400) }
            #expect(error?.reason.hasPrefix("corrupt gzip data near byte") == true, "\(String(describing: error))")

            let zstd = directory.appendingPathComponent("day.zst").path
            try Data([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]).write(to: URL(fileURLWithPath: zstd))
            let refused = #expect(throws: DatasetError.self) { try CriteoTSVReader(path: zstd, tableRows: Self.rows) }
            #expect(refused?.reason.hasPrefix("zstd-compressed data; only plain text and gzip are read") == true)
        }
    }

    @Test func aLastLineCutShortIsNamed() throws {
        try withTemporaryDirectory("criteo-cut") { directory in
            let path = directory.appendingPathComponent("cut.tsv").path
            let lines = Self.lines(3)
            try (lines.joined(separator: "\n").dropLast(30)).write(toFile: path, atomically: true, encoding: .utf8)
            let error = #expect(throws: DatasetError.self) { try CriteoTSVReader(path: path, tableRows: Self.rows).nextBatch(size: 3) }
            #expect(error?.line == 3 && error?.reason.hasSuffix("(the data ends mid-line, without a newline)") == true, "\(String(describing: error))")
        }
    }

    @Test func preprocessingNeverLeavesAHalfDatasetOrOverwritesAGoodOne() throws {
        try withTemporaryDirectory("criteo-bin") { directory in
            let good = directory.appendingPathComponent("good.tsv").path, bad = directory.appendingPathComponent("bad.tsv").path
            try Self.write(Self.lines(100), to: good)
            try Self.write(Self.lines(50) + ["1\t2\tthree"] + Self.lines(50), to: bad)
            let out = directory.appendingPathComponent("bin").path
            func preprocess(_ path: String, overwrite: Bool = false) throws -> CriteoBinary.Header {
                var preprocessor = CriteoPreprocessor(inputs: try DataInputs([path]), out: out, categoricals: .hashed, tableRows: Self.rows, onBadRow: .fail)
                preprocessor.overwrite = overwrite
                return try preprocessor.run()
            }
            #expect(try preprocess(good).samples == 100)
            #expect(throws: DatasetError(path: out, line: 0, reason: "already holds data; pass --overwrite to replace it")) { try preprocess(good) }
            #expect(throws: DatasetError(path: bad, line: 51, reason: "expected 40 tab-separated fields (label, 13 integers, 26 categoricals), found 3")) {
                try preprocess(bad, overwrite: true)
            }
            #expect(try CriteoBinary.header(out).samples == 100, "the good dataset is untouched")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["bad.tsv", "bin", "good.tsv"], "no staging left")

            // Damage: a half-written array, a header of another version, no header at all.
            let sparse = out + "/C7.i32"
            let original = try Data(contentsOf: URL(fileURLWithPath: sparse))
            try original.prefix(original.count - 4).write(to: URL(fileURLWithPath: sparse))
            #expect(throws: DatasetError(path: sparse, line: 0, reason: "396 bytes; 100 samples need 400")) { try CriteoBinaryReader(directory: out) }
            try original.write(to: URL(fileURLWithPath: sparse))
            let header = out + "/criteo.json"
            let text = try String(contentsOfFile: header, encoding: .utf8)
            try text.replacingOccurrences(of: "\"version\" : 1", with: "\"version\" : 7").write(toFile: header, atomically: true, encoding: .utf8)
            #expect(throws: DatasetError(path: header, line: 0, reason: "format version 7; this build reads version 1 (preprocess the data again)")) {
                try CriteoBinaryReader(directory: out)
            }
            try FileManager.default.removeItem(atPath: header)
            let missing = #expect(throws: DatasetError.self) { try CriteoBinaryReader(directory: out) }
            #expect(missing?.reason.hasPrefix("no criteo.json") == true)
        }
    }

    @Test func aFrequencyThresholdGivesFrequentValuesTheirOwnRows() throws {
        try withTemporaryDirectory("criteo-frequency") { directory in
            // C1 takes a, b, a, c, a, b: with at least 2 sightings, a is row 1, b row 2, c shares row 0.
            let values = ["0000000a", "0000000b", "0000000a", "0000000c", "0000000a", "0000000b"]
            let lines = values.map { criteoLine(categoricals: [$0] + (1..<26).map { _ in "00000001" }) }
            let path = directory.appendingPathComponent("data.tsv").path
            try Self.write(lines, to: path)
            let out = directory.appendingPathComponent("bin").path
            let header = try CriteoPreprocessor(inputs: DataInputs([path]), out: out, categoricals: .frequency(minCount: 2),
                                                tableRows: Self.rows, onBadRow: .fail).run()
            #expect(header.tableRows[0] == 3 && header.tableRows[1] == 2 && header.categoricals == .frequency(minCount: 2))
            let batch = try #require(try CriteoBinaryReader(directory: out).nextBatch(size: 6))
            #expect(Array(batch.bags.indices[0..<6]) == [1, 2, 1, 0, 1, 2])
            #expect(Array(batch.bags.indices[6..<12]) == [1, 1, 1, 1, 1, 1])
        }
    }

    @Test func filesAreReadAheadOnAThreadWithTheSameResult() throws {
        try withTemporaryDirectory("criteo-ahead") { directory in
            let path = directory.appendingPathComponent("data.tsv").path
            try Self.write(Self.lines(300) + ["bad"], to: path)
            let direct = try CriteoTSVReader(path: path, tableRows: Self.rows, holdoutEvery: 5, slice: SampleSlice(rank: 0, ranks: 2))
            let files = try ClickFiles(format: .tsv, inputs: DataInputs([path]), tableRows: Self.rows, onBadRow: .fail, holdOut: .every(5),
                                       heldOutLimit: 1000, slice: SampleSlice(rank: 0, ranks: 2), batchSize: 100)
            for _ in 0..<2 { #expect(try files.next() == direct.nextBatch(size: 100), "batches differ") }
            #expect(try files.heldOut(count: 1000) == direct.heldOut.batch(), "held-out samples differ")
            // The third batch reaches the bad last line, the 41st of the batch, in rank 0's half:
            // its error arrives with that batch, and again after. Rank 1 passes over it unread.
            let other = try CriteoTSVReader(path: path, tableRows: Self.rows, holdoutEvery: 5, slice: SampleSlice(rank: 1, ranks: 2))
            for _ in 0..<3 { _ = try other.nextBatch(size: 100) }
            for _ in 0..<2 {
                let error = #expect(throws: DatasetError.self) { try files.next() }
                #expect(error?.line == 301 && error?.foundByOneRank == true && error?.reason.hasSuffix("found 1") == true, "\(String(describing: error))")
            }
        }
    }
}
