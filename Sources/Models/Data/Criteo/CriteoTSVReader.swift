import Foundation

/// What a reader does with a malformed row: stop with its file and line, or report and skip it.
public enum BadRowPolicy: String, CaseIterable, Codable, Sendable {
    case fail, skip
}

/// Which samples of every global batch a rank keeps: the `rank`-th of `ranks` equal,
/// consecutive shares. Every rank count sees the same global batches.
public struct SampleSlice: Sendable, Equatable {
    public let rank: Int
    public let ranks: Int

    public init(rank: Int, ranks: Int) {
        precondition(ranks >= 1 && (0..<ranks).contains(rank))
        self.rank = rank
        self.ranks = ranks
    }

    public static let whole = SampleSlice(rank: 0, ranks: 1)

    /// This rank's share of a global batch of `size` samples (`size` divisible by `ranks`).
    public func range(of size: Int) -> Range<Int> {
        let local = size / ranks
        return rank * local ..< (rank + 1) * local
    }
}

/// Click samples read from files one global batch at a time, keeping this rank's slice. Every
/// `holdoutEvery`-th sample is held out of training; those of the first pass are collected, up
/// to a limit, for evaluation.
public protocol ClickBatchReader: AnyObject, Sendable {
    /// This rank's slice of the next global batch of `size` samples, or nil when data that is
    /// read once (standard input) has ended. Files are read again from the start at their end.
    func nextBatch(size: Int) throws -> ClickBatch?
    /// Up to `count` samples, the whole batch, from where the reader is to the end of one
    /// pass: a held-out set read from its own files.
    func firstSamples(_ count: Int) throws -> ClickBatch
    /// Moves past `batches` global batches of `size`, as a run resumed at a step must.
    func skip(batches: Int, size: Int) throws
    /// Held-out samples collected so far (in every rank's reader: all of them).
    var heldOut: HeldOutSamples { get }
    /// Rows skipped as malformed so far.
    var skippedRows: Int { get }
}

/// Streams Criteo TSV from plain or gzip files, or standard input, in constant memory (see
/// `CriteoLineParser` for the layout). Every rank finds every line end (memchr) but parses
/// only the samples of its own slice and the held-out ones it collects; when bad rows are
/// skipped it also checks every other line, so that all ranks agree on which are samples.
public final class CriteoTSVReader: ClickBatchReader, @unchecked Sendable {
    public static let denseFeatures = CriteoLineParser.denseFeatures
    public static let categoricalFeatures = CriteoLineParser.categoricalFeatures

    public let inputs: DataInputs
    public let tableRows: [Int]
    public let onBadRow: BadRowPolicy
    public let holdoutEvery: Int
    public let slice: SampleSlice
    public let heldOut: HeldOutSamples
    /// Called with every row skipped under `.skip`, on the thread that reads.
    public var onSkip: (DatasetError) -> Void = { _ in }
    public private(set) var skippedRows = 0
    /// Completed passes over the inputs.
    public private(set) var epoch = 0

    private let lines: LineStream
    private let parser: CriteoLineParser
    /// Whether every line is checked, parsed or not: when bad rows are skipped, all ranks must
    /// agree on which lines are samples. When a bad row ends the run, a line of another rank's
    /// slice is passed over unread, and only the rank that parses a bad row reports it.
    private var checksEveryLine: Bool { onBadRow == .skip }
    /// Samples (good lines) so far in this pass, held out or not, and training samples alone.
    private var samplesInPass = 0, trainingInPass = 0

    public init(inputs: DataInputs, tableRows: [Int], onBadRow: BadRowPolicy = .fail, holdoutEvery: Int = 0,
                holdoutLimit: Int = 1 << 16, slice: SampleSlice = .whole) throws(DatasetError) {
        guard tableRows.count == Self.categoricalFeatures else {
            throw DatasetError(path: inputs.description, line: 0,
                               reason: "the Criteo layout has 26 categorical features; the model has \(tableRows.count) tables")
        }
        self.inputs = inputs
        self.tableRows = tableRows
        self.onBadRow = onBadRow
        self.holdoutEvery = holdoutEvery
        self.slice = slice
        heldOut = HeldOutSamples(limit: holdoutLimit)
        parser = CriteoLineParser(tableRows: tableRows)
        lines = try LineStream(inputs)
    }

    /// One file (or "-"), for tests and tools.
    public convenience init(path: String, tableRows: [Int], onBadRow: BadRowPolicy = .fail, holdoutEvery: Int = 0,
                            holdoutLimit: Int = 1 << 16, slice: SampleSlice = .whole) throws(DatasetError) {
        try self.init(inputs: DataInputs([path]), tableRows: tableRows, onBadRow: onBadRow, holdoutEvery: holdoutEvery,
                      holdoutLimit: holdoutLimit, slice: slice)
    }

    public func nextBatch(size: Int) throws -> ClickBatch? {
        try read(size: size, partial: false)
    }

    public func firstSamples(_ count: Int) throws -> ClickBatch {
        try read(size: count, partial: true) ?? ClickBatch(dense: [], bags: BagBatch(batchSize: 0, features: 26, offsets: [0], indices: []), labels: [])
    }

    public func skip(batches: Int, size: Int) throws {
        for _ in 0..<batches { guard try read(size: size, partial: false, keep: false) != nil else { return } }
    }

    /// Reads a global batch of `size` samples, parsing this rank's slice into a batch when
    /// `keep`. At the end of data read once: nil, or what was read when `partial`.
    private func read(size: Int, partial: Bool, keep: Bool = true) throws -> ClickBatch? {
        precondition(size % slice.ranks == 0, "a global batch of \(size) does not split over \(slice.ranks) ranks")
        let mine = keep ? slice.range(of: size) : 0..<0
        var samples = SampleColumns(count: mine.count)
        var filled = 0
        let ended = try samples.withSlots { slot throws -> Bool in
            var k = 0
            while k < size {
                guard let line = try lines.next() else {
                    guard trainingInPass > 0 else {
                        throw DatasetError(path: inputs.description, line: 0, reason: "no samples to train on (every row held out or skipped)")
                    }
                    guard !partial, try lines.restart() else { return true }
                    epoch += 1
                    samplesInPass = 0
                    trainingInPass = 0
                    continue
                }
                let held = holdoutEvery > 0 && (samplesInPass + 1) % holdoutEvery == 0
                let owned = !held && mine.contains(k)
                var reason: String?
                if held && epoch == 0 && heldOut.count < heldOut.limit {
                    reason = heldOut.append { parser.parse(line, into: $0) }
                } else if owned {
                    reason = parser.parse(line, into: slot(k - mine.lowerBound))
                } else if checksEveryLine {
                    reason = parser.parse(line, into: nil)
                }
                if let reason {
                    var error = DatasetError(path: lines.displayPath, line: lines.line,
                                             reason: lines.unterminated ? reason + " (the data ends mid-line, without a newline)" : reason)
                    error.foundByOneRank = owned && slice.ranks > 1 && !checksEveryLine
                    if onBadRow == .fail { throw error }
                    skippedRows += 1
                    onSkip(error)
                    continue
                }
                samplesInPass += 1
                if !held {
                    trainingInPass += 1
                    k += 1
                    filled = max(0, min(k - mine.lowerBound, mine.count))
                }
            }
            return false
        }
        guard keep else { return ended ? nil : samples.batch(count: 0) }
        if ended && !partial { return nil }
        return samples.batch(count: ended ? filled : mine.count)
    }
}

/// Samples laid out as a batch wants them, filled slot by slot: labels, dense features row
/// by row, and each table's rows together.
struct SampleColumns {
    let count: Int
    var labels: [Float]
    var dense: [Float]
    var rows: [Int32]

    /// Room for `count` samples, zeroed unless the caller fills every slot.
    init(count: Int, zeroed: Bool = true) {
        func array<T: Numeric>(_ n: Int) -> [T] {
            zeroed ? [T](repeating: 0, count: n) : [T](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
        }
        self.count = count
        labels = array(count)
        dense = array(count * CriteoLineParser.denseFeatures)
        rows = array(count * CriteoLineParser.categoricalFeatures)
    }

    /// Runs `body` with a function giving the slot of sample `i`.
    mutating func withSlots<R>(_ body: ((Int) -> SampleSlot) throws -> R) rethrows -> R {
        let count = count
        return try labels.withUnsafeMutableBufferPointer { labels in
            try dense.withUnsafeMutableBufferPointer { dense in
                try rows.withUnsafeMutableBufferPointer { rows in
                    try body { i in
                        SampleSlot(label: labels.baseAddress! + i, dense: dense.baseAddress! + i * CriteoLineParser.denseFeatures,
                                   rows: rows.baseAddress! + i, rowStride: count)
                    }
                }
            }
        }
    }

    /// The first `used` samples as a batch (one index per bag), without copying when all are used.
    consuming func batch(count used: Int) -> ClickBatch {
        let tables = CriteoLineParser.categoricalFeatures
        guard used < count else { return .onePerBag(dense: dense, rows: rows, labels: labels, features: tables) }
        return .onePerBag(dense: Array(dense[..<(used * CriteoLineParser.denseFeatures)]),
                          rows: (0..<tables).flatMap { t in rows[t * count ..< t * count + used] },
                          labels: Array(labels[..<used]), features: tables)
    }
}

/// The held-out samples a reader collects as it passes them, up to `limit`, safe to read
/// from another thread than the one reading.
public final class HeldOutSamples: @unchecked Sendable {
    public let limit: Int
    private let lock = NSLock()
    private var labels: [Float] = []
    private var dense: [Float] = []
    /// Sample by sample, 26 rows each.
    private var rows: [Int32] = []

    init(limit: Int) { self.limit = limit }

    public var count: Int { lock.withLock { labels.count } }

    /// Parses one sample with `parse` into a new slot when the limit allows, else only checks
    /// it; returns `parse`'s verdict and keeps the sample only when it is good.
    func append(_ parse: (SampleSlot?) -> String?) -> String? {
        guard count < limit else { return parse(nil) }
        var label: Float = 0
        var dense = [Float](repeating: 0, count: CriteoLineParser.denseFeatures)
        var rows = [Int32](repeating: 0, count: CriteoLineParser.categoricalFeatures)
        let reason = withUnsafeMutablePointer(to: &label) { l in
            dense.withUnsafeMutableBufferPointer { d in
                rows.withUnsafeMutableBufferPointer { r in parse(SampleSlot(label: l, dense: d.baseAddress!, rows: r.baseAddress!, rowStride: 1)) }
            }
        }
        if reason == nil { append(label: label, dense: dense, rows: rows) }
        return reason
    }

    /// Keeps one sample when the limit allows.
    func append(label: Float, dense: some Collection<Float>, rows: some Collection<Int32>) {
        lock.withLock {
            guard labels.count < limit else { return }
            labels.append(label)
            self.dense.append(contentsOf: dense)
            self.rows.append(contentsOf: rows)
        }
    }

    /// The first `count` samples collected (all when nil), as a batch.
    public func batch(count: Int? = nil) -> ClickBatch {
        lock.withLock {
            let n = min(count ?? labels.count, labels.count), tables = CriteoLineParser.categoricalFeatures
            var indices = [Int32](repeating: 0, count: n * tables)
            for i in 0..<n { for t in 0..<tables { indices[t * n + i] = rows[i * tables + t] } }
            return .onePerBag(dense: Array(dense[..<(n * CriteoLineParser.denseFeatures)]), rows: indices, labels: Array(labels[..<n]), features: tables)
        }
    }
}
