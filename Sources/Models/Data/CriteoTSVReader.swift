import Foundation

/// What a reader does with a malformed row: stop with its file and line, or report and skip it.
public enum BadRowPolicy: String, CaseIterable, Codable, Sendable {
    case fail, skip
}

/// Streams the Criteo Kaggle / Terabyte TSV layout (label, 13 integer counts, 26 8-hex-digit
/// categoricals, tab-separated, any field but the label may be empty) in constant memory, one
/// line at a time. Dense features become log(1 + max(x, 0)); a categorical's hash value modulo
/// its table's rows is its row (empty: row 0). Every `holdoutEvery`-th line (when > 0) is held
/// out from training and collected, up to `holdoutLimit` samples, for evaluation.
public final class CriteoTSVReader {
    public static let denseFeatures = 13
    public static let categoricalFeatures = 26

    public let path: String
    public let tableRows: [Int]
    public let onBadRow: BadRowPolicy
    public let holdoutEvery: Int
    public let holdoutLimit: Int
    /// Called with every row skipped under `.skip`.
    public var onSkip: (DatasetError) -> Void = { _ in }
    public private(set) var line = 0
    public private(set) var skippedRows = 0
    /// Completed passes over the file.
    public private(set) var epoch = 0
    private var heldOutSamples = CollectedSamples()

    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>?
    private var bufferSize = 0
    private var fields = [Range<Int>](repeating: 0..<0, count: 40)

    public init(path: String, tableRows: [Int], onBadRow: BadRowPolicy = .fail, holdoutEvery: Int = 0,
                holdoutLimit: Int = 1 << 16) throws(DatasetError) {
        guard tableRows.count == Self.categoricalFeatures else {
            throw DatasetError(path: path, line: 0, reason: "the Criteo layout has 26 categorical features; the model has \(tableRows.count) tables")
        }
        guard let file = fopen(path, "r") else {
            throw DatasetError(path: path, line: 0, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.tableRows = tableRows
        self.onBadRow = onBadRow
        self.holdoutEvery = holdoutEvery
        self.holdoutLimit = holdoutLimit
        self.file = file
    }

    /// The held-out samples collected so far.
    public var heldOut: ClickBatch { heldOutSamples.batch }

    deinit {
        fclose(file)
        free(buffer)
    }

    /// The next `size` training samples, continuing from the file's start after its end
    /// (`epoch` counts the wraps). Nil when the file holds no training sample at all.
    public func nextBatch(size: Int) throws(DatasetError) -> ClickBatch? {
        var training = CollectedSamples()
        var sample = ParsedSample()
        var wrappedWithoutSample = false
        while training.labels.count < size {
            guard try readLine(into: &sample) else {
                if wrappedWithoutSample { return nil }
                wrappedWithoutSample = training.labels.isEmpty
                rewind(file)
                line = 0
                epoch += 1
                continue
            }
            if holdoutEvery > 0, line % holdoutEvery == 0 {
                if epoch == 0, heldOutSamples.labels.count < holdoutLimit { heldOutSamples.append(sample) }
                continue
            }
            wrappedWithoutSample = false
            training.append(sample)
        }
        return training.batch
    }

    /// Parsed samples gathered column by column, then made a batch with one index per bag
    /// (Criteo has one categorical value per feature).
    struct CollectedSamples {
        var dense: [Float] = []
        var labels: [Float] = []
        var rows = [[Int32]](repeating: [], count: CriteoTSVReader.categoricalFeatures)

        mutating func append(_ sample: ParsedSample) {
            labels.append(sample.label)
            dense.append(contentsOf: sample.dense)
            for t in rows.indices { rows[t].append(sample.rows[t]) }
        }

        var batch: ClickBatch {
            let bags = BagBatch(batchSize: labels.count, features: rows.count,
                                offsets: (0...(labels.count * rows.count)).map(Int32.init), indices: rows.flatMap { $0 })
            return ClickBatch(dense: dense, bags: bags, labels: labels)
        }
    }

    struct ParsedSample {
        var label: Float = 0
        var dense = [Float](repeating: 0, count: CriteoTSVReader.denseFeatures)
        var rows = [Int32](repeating: 0, count: CriteoTSVReader.categoricalFeatures)
    }

    /// Parses the next line into `sample`, skipping bad rows under `.skip`; false at the end.
    private func readLine(into sample: inout ParsedSample) throws(DatasetError) -> Bool {
        while true {
            let length = getline(&buffer, &bufferSize, file)
            guard length >= 0, let buffer else { return false }
            line += 1
            var end = length
            while end > 0 && (buffer[end - 1] == 0x0a || buffer[end - 1] == 0x0d) { end -= 1 }
            if let reason = parse(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: end, into: &sample) {
                let error = DatasetError(path: path, line: line, reason: reason)
                if onBadRow == .fail { throw error }
                skippedRows += 1
                onSkip(error)
                continue
            }
            return true
        }
    }

    /// Why the line cannot be read, or nil with `sample` filled.
    private func parse(_ bytes: UnsafePointer<UInt8>, count: Int, into sample: inout ParsedSample) -> String? {
        var fieldCount = 0, start = 0
        for i in 0...count where i == count || bytes[i] == 0x09 {
            if fieldCount < fields.count { fields[fieldCount] = start..<i }
            fieldCount += 1
            start = i + 1
        }
        guard fieldCount == 40 else { return "expected 40 tab-separated fields (label, 13 integers, 26 categoricals), found \(fieldCount)" }
        let label = fields[0]
        guard label.count == 1, bytes[label.lowerBound] == 0x30 || bytes[label.lowerBound] == 0x31 else {
            return "label '\(text(bytes, label))' is not 0 or 1"
        }
        sample.label = bytes[label.lowerBound] == 0x31 ? 1 : 0
        for j in 0..<Self.denseFeatures {
            let field = fields[1 + j]
            guard let value = integer(bytes, field) else { return "I\(j + 1) '\(text(bytes, field))' is not an integer" }
            sample.dense[j] = Float(log1p(Double(max(value, 0))))
        }
        for t in 0..<Self.categoricalFeatures {
            let field = fields[14 + t]
            guard let value = hex(bytes, field) else { return "C\(t + 1) '\(text(bytes, field))' is not a hexadecimal hash" }
            sample.rows[t] = Int32(value % UInt64(tableRows[t]))
        }
        return nil
    }

    /// A decimal integer, 0 when empty; nil when malformed or out of range.
    private func integer(_ bytes: UnsafePointer<UInt8>, _ field: Range<Int>) -> Int64? {
        guard !field.isEmpty else { return 0 }
        var i = field.lowerBound
        let negative = bytes[i] == 0x2d
        if negative { i += 1 }
        guard i < field.upperBound else { return nil }
        var value: Int64 = 0
        while i < field.upperBound {
            let digit = Int64(bytes[i]) - 0x30
            guard digit >= 0, digit <= 9 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = sum
            i += 1
        }
        return negative ? -value : value
    }

    /// Up to 16 hexadecimal digits, 0 when empty; nil otherwise.
    private func hex(_ bytes: UnsafePointer<UInt8>, _ field: Range<Int>) -> UInt64? {
        guard field.count <= 16 else { return nil }
        var value: UInt64 = 0
        for i in field {
            let c = bytes[i]
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30
            case 0x61...0x66: digit = c - 0x61 + 10
            case 0x41...0x46: digit = c - 0x41 + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    private func text(_ bytes: UnsafePointer<UInt8>, _ field: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(start: bytes + field.lowerBound, count: min(field.count, 40)), as: UTF8.self)
    }
}
