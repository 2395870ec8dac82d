import Foundation
import ZlibShim

/// How fast Criteo data reaches training on one core: the same lines as plain TSV, gzip TSV
/// and the preprocessed binary format, read by one rank whole and by one rank of several
/// (which scans every line but parses only its slice). Throughput is counted in the global
/// stream's lines per second of the reading thread's CPU time, so that other jobs on the
/// machine do not count against it.
public struct DataBenchmark {
    /// One measured input and rank count.
    public struct Row: Codable, Sendable {
        public var input: String
        public var ranks: Int
        /// Lines (samples) of the global stream per second of reading-thread CPU time, median.
        public var linesPerSecond: Double
        /// Input bytes per line in this form.
        public var bytesPerLine: Double
        /// Relative spread of the runs: (max - min) / median.
        public var spread: Double
    }

    /// The three forms of the same lines, in `directory`.
    public struct Files {
        public var tsv: String
        public var gzip: String
        public var binary: String
        public var lines: Int
        /// Lines per second of `data preprocess` from the gzip file, wall time.
        public var preprocessLinesPerSecond: Double
    }

    public var batchSize = 4096
    public var runs = 3

    public init() {}

    /// Writes `lines` lines made by repeating the lines of `sample` as TSV, as gzip (zlib,
    /// level 6) and preprocessed into `directory`.
    public static func prepare(sample: String, lines: Int, directory: String) throws -> Files {
        guard let text = FileManager.default.contents(atPath: sample) else { throw DatasetError(path: sample, line: 0, reason: "cannot read") }
        let sampleLines = text.split(separator: 0x0a, omittingEmptySubsequences: true)
        guard !sampleLines.isEmpty else { throw DatasetError(path: sample, line: 0, reason: "no lines") }
        let tsv = directory + "/criteo.tsv", gzip = tsv + ".gz", binary = directory + "/criteo-bin"
        guard let plain = fopen(tsv, "wb"), let compressed = gzopen(gzip, "wb6") else {
            throw DatasetError(path: directory, line: 0, reason: "cannot write the benchmark inputs: \(String(cString: strerror(errno)))")
        }
        var chunk = Data()
        for i in 0..<lines {
            chunk += sampleLines[i % sampleLines.count]
            chunk.append(0x0a)
            if chunk.count >= 1 << 20 || i == lines - 1 {
                let ok = chunk.withUnsafeBytes { bytes in
                    fwrite(bytes.baseAddress, 1, bytes.count, plain) == bytes.count && gzwrite(compressed, bytes.baseAddress, UInt32(bytes.count)) == bytes.count
                }
                guard ok else { throw DatasetError(path: directory, line: 0, reason: "cannot write the benchmark inputs") }
                chunk.removeAll(keepingCapacity: true)
            }
        }
        guard fclose(plain) == 0, gzclose(compressed) == Z_OK else { throw DatasetError(path: directory, line: 0, reason: "cannot write the benchmark inputs") }
        var preprocessor = CriteoPreprocessor(inputs: try DataInputs([gzip]), out: binary, categoricals: .hashed,
                                              tableRows: Self.tableRows, onBadRow: .fail)
        preprocessor.overwrite = true
        let start = ContinuousClock.now
        try preprocessor.run()
        let seconds = (ContinuousClock.now - start).seconds
        return Files(tsv: tsv, gzip: gzip, binary: binary, lines: lines, preprocessLinesPerSecond: Double(lines) / seconds)
    }

    /// bench-B's tables: 26 of 10,000 rows.
    public static let tableRows = [Int](repeating: 10_000, count: CriteoLineParser.categoricalFeatures)

    /// Reads every line of `files` in each form, whole and as rank 0 of each count in `ranks`.
    public func run(_ files: Files, ranks: [Int]) throws -> [Row] {
        let size = { (path: String) in Double((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) }
        let binaryBytes = CriteoBinary.arrays.reduce(0) { $0 + size(files.binary + "/" + $1.0) }
        let forms: [(String, String, Double, (SampleSlice) throws -> any ClickBatchReader)] = [
            ("tsv", files.tsv, size(files.tsv), { try CriteoTSVReader(path: files.tsv, tableRows: Self.tableRows, slice: $0) }),
            ("gzip tsv", files.gzip, size(files.gzip), { try CriteoTSVReader(path: files.gzip, tableRows: Self.tableRows, slice: $0) }),
            ("binary", files.binary, binaryBytes, { try CriteoBinaryReader(directory: files.binary, slice: $0) }),
        ]
        var rows: [Row] = []
        for (name, _, bytes, open) in forms {
            for count in ranks {
                let global = batchSize / count * count
                let batches = files.lines / global
                var rates: [Double] = []
                for _ in 0..<runs {
                    let reader = try open(SampleSlice(rank: 0, ranks: count))
                    let start = KernelTimer.threadCPUSeconds()
                    for _ in 0..<batches { _ = try reader.nextBatch(size: global) }
                    rates.append(Double(batches * global) / max(KernelTimer.threadCPUSeconds() - start, 1e-9))
                }
                let middle = median(rates)
                rows.append(Row(input: name, ranks: count, linesPerSecond: middle, bytesPerLine: bytes / Double(files.lines),
                                spread: (rates.max()! - rates.min()!) / middle))
            }
        }
        return rows
    }
}
