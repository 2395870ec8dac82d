import Foundation

/// Where a run's training and held-out samples come from: synthetic clicks drawn for its
/// tables, or Criteo data read from files.
public enum ClickSource: CustomStringConvertible {
    /// Synthetic clicks, and the spec file their tables came from, if any.
    case synthetic(SyntheticClicks, specs: String?)
    case files(ClickFiles)

    /// Samples `slice` of batch `step` of `size` samples; nil when data read once has ended.
    /// Files are read in the slice their reader was opened with, which must be `slice`.
    public func next(step: Int, size: Int, slice: Range<Int>) throws -> ClickBatch? {
        switch self {
        case .synthetic(let generator, _):
            return generator.batch(samples: step * size + slice.lowerBound ..< step * size + slice.upperBound)
        case .files(let files):
            precondition(files.slice.range(of: size) == slice && files.batchSize == size, "files are read in the slice they were opened with")
            return try files.next()
        }
    }

    /// Moves past the first `steps` batches, as a run resumed at that step must.
    public func skip(steps: Int, size: Int) throws {
        guard case .files(let files) = self else { return }
        try files.skip(batches: steps)
    }

    public func heldOut(count: Int) throws -> ClickBatch {
        switch self {
        case .synthetic(let generator, _): generator.heldOut(count: count)
        case .files(let files): try files.heldOut(count: count)
        }
    }

    /// Whether the held-out set grows as training reads on (held-out samples of files are
    /// collected as they are passed), so that each evaluation asks for it again.
    public var heldOutGrows: Bool {
        if case .files = self { true } else { false }
    }

    public var description: String {
        switch self {
        case .synthetic(let g, let specs):
            "synthetic clicks" + (specs.map { " of the tables in \(URL(fileURLWithPath: $0).lastPathComponent)" } ?? "") + ", "
                + Self.describe(g.traffic) + ", teacher DLRM labels, seed \(g.seed)"
        case .files(let files):
            files.description
        }
    }

    /// Pooling, bag sizes and row distributions of `traffic` in a few words.
    static func describe(_ traffic: [TableTraffic]) -> String {
        func number(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value) }
        let pooling = traffic.map(\.poolingFactor)
        let (low, high) = (pooling.min() ?? 0, pooling.max() ?? 0)
        let poolingText = low == high ? "\(number(low)) indices per bag" : "\(number(low))-\(number(high)) indices per bag"
        let bags = Set(traffic.map(\.bagSizes.rawValue)).sorted().joined(separator: "/")
        let exponents = traffic.compactMap { t -> Double? in if case .distribution(.zipf(let s)) = t.source { s } else { nil } }
        var kinds: [String] = []
        if traffic.contains(where: { $0.source == .distribution(.uniform) }) { kinds.append("uniform") }
        if let low = exponents.min(), let high = exponents.max() { kinds.append(low == high ? "zipf:\(low)" : "zipf:\(low)-\(high)") }
        if traffic.contains(where: { if case .groups = $0.source { true } else { false } }) { kinds.append("reuse bins") }
        return poolingText + (bags == "fixed" ? "" : " (\(bags))") + ", " + kinds.joined(separator: ", ")
    }

    /// "; N bad rows skipped" when a reader skipped any, else empty.
    public var skippedSuffix: String {
        if case .files(let files) = self, files.skippedRows > 0 { return "; \(files.skippedRows) bad rows skipped" }
        return ""
    }
}

/// Criteo samples from files, TSV or preprocessed: this rank's slice of every global batch,
/// read ahead on a thread; held-out samples every N-th sample of the training data, or the
/// first ones of their own files.
public final class ClickFiles: CustomStringConvertible {
    public enum Format: String, Sendable {
        /// Criteo TSV, plain or gzip, any number of files, or standard input.
        case tsv
        /// A directory written by `CriteoPreprocessor`.
        case binary
    }

    /// Where held-out samples come from.
    public enum HoldOut: Sendable {
        case none
        /// Every N-th sample of the training data, the first pass's, up to the evaluation size.
        case every(Int)
        /// The first samples of these inputs, in the same format.
        case inputs(DataInputs)
    }

    public let format: Format
    public let inputs: DataInputs
    public let slice: SampleSlice
    public let batchSize: Int
    public let holdOut: HoldOut
    private let reader: any ClickBatchReader
    private let testReader: (any ClickBatchReader)?
    private let prefetcher: BatchPrefetcher
    private var heldOutCount = 0
    private var testSamples: ClickBatch?
    public private(set) var skippedRows = 0

    /// Opens the inputs (a binary format takes one directory) with `tableRows` (a binary
    /// dataset's own rows must be the same); `onSkip` hears of every malformed row skipped,
    /// on the reading thread.
    public init(format: Format, inputs: DataInputs, tableRows: [Int], onBadRow: BadRowPolicy, holdOut: HoldOut, heldOutLimit: Int,
                slice: SampleSlice, batchSize: Int, onSkip: @escaping @Sendable (DatasetError) -> Void = { _ in }) throws(DatasetError) {
        precondition(batchSize % slice.ranks == 0)
        self.format = format
        self.inputs = inputs
        self.slice = slice
        self.batchSize = batchSize
        self.holdOut = holdOut
        let every = if case .every(let n) = holdOut { n } else { 0 }
        reader = try Self.open(format, inputs, tableRows: tableRows, onBadRow: onBadRow, holdoutEvery: every, limit: heldOutLimit, slice: slice, onSkip: onSkip)
        if case .inputs(let test) = holdOut {
            testReader = try Self.open(format, test, tableRows: tableRows, onBadRow: onBadRow, holdoutEvery: 0, limit: 0, slice: .whole, onSkip: onSkip)
        } else {
            testReader = nil
        }
        prefetcher = BatchPrefetcher(reader: reader, size: batchSize)
    }

    deinit { prefetcher.stop() }

    private static func open(_ format: Format, _ inputs: DataInputs, tableRows: [Int], onBadRow: BadRowPolicy, holdoutEvery: Int, limit: Int,
                             slice: SampleSlice, onSkip: @escaping @Sendable (DatasetError) -> Void) throws(DatasetError) -> any ClickBatchReader {
        switch format {
        case .tsv:
            let reader = try CriteoTSVReader(inputs: inputs, tableRows: tableRows, onBadRow: onBadRow, holdoutEvery: holdoutEvery,
                                             holdoutLimit: limit, slice: slice)
            reader.onSkip = onSkip
            return reader
        case .binary:
            guard inputs.paths.count == 1, !inputs.isStandardInput else {
                throw DatasetError(path: inputs.description, line: 0, reason: "a preprocessed dataset is one directory")
            }
            let reader = try CriteoBinaryReader(directory: inputs.paths[0], holdoutEvery: holdoutEvery, holdoutLimit: limit, slice: slice)
            guard reader.header.tableRows == tableRows else {
                throw DatasetError(path: inputs.paths[0], line: 0, reason: "its tables have \(Self.rows(reader.header.tableRows)) rows; "
                                   + "the model's have \(Self.rows(tableRows)) (preprocess again, or train with the dataset's rows)")
            }
            return reader
        }
    }

    /// Rows of every table, in a few words.
    static func rows(_ rows: [Int]) -> String {
        Set(rows).count == 1 ? "\(rows[0])" : rows.map(String.init).joined(separator: "-")
    }

    /// The next batch (this rank's slice), or nil when data read once has ended.
    public func next() throws -> ClickBatch? {
        let read = try prefetcher.next()
        heldOutCount = read.heldOutCount
        skippedRows = read.skippedRows
        return read.batch
    }

    /// Moves past the first `batches` batches; only before the first `next`.
    public func skip(batches: Int) throws {
        try reader.skip(batches: batches, size: batchSize)
        heldOutCount = reader.heldOut.count
        skippedRows = reader.skippedRows
    }

    /// The held-out samples (all of them, on every rank): those collected up to the last
    /// batch trained on, or the first `count` of the test inputs.
    public func heldOut(count: Int) throws -> ClickBatch {
        if let testReader {
            if testSamples == nil { testSamples = try testReader.firstSamples(count) }
            return testSamples!
        }
        return reader.heldOut.batch(count: min(count, heldOutCount))
    }

    public var description: String {
        let what = format == .tsv ? "Criteo TSV \(inputs)" + (inputs.readsOnce ? " (read once)" : "") : "preprocessed Criteo \(inputs)"
        let held: String = switch holdOut {
        case .none: "nothing held out"
        case .every(let n): "every \(n)th sample held out"
        case .inputs(let test): "held out: \(test)"
        }
        let parsing = slice.ranks > 1 ? ", each rank parsing its \(batchSize / slice.ranks) of every \(batchSize) samples" : ""
        return what + ", " + held + parsing
    }
}
