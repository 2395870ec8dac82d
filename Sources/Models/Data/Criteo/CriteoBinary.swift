import Foundation

/// The preprocessed Criteo format: a directory of fixed-width arrays, memory-mapped to train.
///
///     criteo.json   the header: format version, sample count, table rows, how categoricals
///                   became rows, the source files; written last, so a directory without it is
///                   not a dataset
///     labels.u8     one byte per sample, 0 or 1
///     dense.f32     13 little-endian Float32 per sample, log(1 + max(x, 0)) already applied
///     C1.i32 ...    one little-endian Int32 row per sample for each of the 26 tables, already
///     C26.i32       hashed into the table: a slice of a batch is one copy per table
///
/// Samples are in input order; a sample's bytes are the same as the TSV reader's batch holds.
public enum CriteoBinary {
    public static let version = 1
    static let formatName = "mpitrain-criteo-binary"
    static let headerFile = "criteo.json"
    static let labelsFile = "labels.u8"
    static let denseFile = "dense.f32"
    /// The rows file of table `t` (0-based).
    static func rowsFile(_ t: Int) -> String { "C\(t + 1).i32" }

    /// How categorical values became rows; in the header, "hashed" or "frequency>=N".
    public enum Categoricals: Codable, Sendable, Equatable, CustomStringConvertible {
        /// Each value modulo its table's rows (the reference's `--arch-embedding-size`).
        case hashed
        /// Values seen at least `minCount` times get rows 1..., in order of first appearance;
        /// the others share row 0.
        case frequency(minCount: Int)

        public var description: String {
            switch self {
            case .hashed: "hashed"
            case .frequency(let minCount): "frequency>=\(minCount)"
            }
        }

        public init(from decoder: Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            if text == "hashed" {
                self = .hashed
            } else if text.hasPrefix("frequency>="), let n = Int(text.dropFirst("frequency>=".count)), n >= 1 {
                self = .frequency(minCount: n)
            } else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is neither hashed nor frequency>=N"))
            }
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }
    }

    public struct Header: Codable, Sendable, Equatable {
        public var format = CriteoBinary.formatName
        public var version = CriteoBinary.version
        public var samples: Int
        public var denseFeatures = CriteoLineParser.denseFeatures
        public var tableRows: [Int]
        public var categoricals: Categoricals
        /// The inputs it was made from, and the malformed rows skipped.
        public var sources: [String]
        public var skippedRows: Int
    }

    /// Reads and checks the header of the dataset in `directory` and that its arrays hold
    /// exactly its samples.
    public static func header(_ directory: String) throws(DatasetError) -> Header {
        let path = directory + "/" + headerFile
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError(path: directory, line: 0, reason: "no such directory (a preprocessed dataset is one: `mpitrain data preprocess --out`)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError(path: directory, line: 0, reason: "no \(headerFile): not a preprocessed dataset, or one whose writing did not finish")
        }
        struct Probe: Decodable { var format: String?; var version: Int? }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: data), probe.format == formatName else {
            throw DatasetError(path: path, line: 0, reason: "not the header of a preprocessed Criteo dataset")
        }
        guard probe.version == version else {
            throw DatasetError(path: path, line: 0, reason: "format version \(probe.version.map(String.init) ?? "?"); this build reads version \(version) (preprocess the data again)")
        }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data) } catch {
            throw DatasetError(path: path, line: 0, reason: "damaged header (\(error))")
        }
        guard header.samples >= 0, header.denseFeatures == CriteoLineParser.denseFeatures,
              header.tableRows.count == CriteoLineParser.categoricalFeatures, header.tableRows.allSatisfy({ 1...Int(Int32.max) ~= $0 }) else {
            throw DatasetError(path: path, line: 0, reason: "\(header.tableRows.count) tables and \(header.denseFeatures) dense features; "
                               + "the Criteo layout has 26 and 13, each table with 1...\(Int32.max) rows")
        }
        for (file, width) in arrays {
            let expected = header.samples * width
            let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.size] as? Int) ?? nil
            guard size == expected else {
                throw DatasetError(path: directory + "/" + file, line: 0,
                                   reason: size.map { "\($0) bytes; \(header.samples) samples need \(expected)" } ?? "missing")
            }
        }
        return header
    }

    /// Every array file and its bytes per sample.
    static let arrays = [(labelsFile, 1), (denseFile, 4 * CriteoLineParser.denseFeatures)]
        + (0..<CriteoLineParser.categoricalFeatures).map { (rowsFile($0), 4) }
}

/// A file mapped into memory, read-only unless `writable`.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer

    init(_ path: String, writable: Bool = false) throws(DatasetError) {
        self.path = path
        let descriptor = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard descriptor >= 0 else { throw DatasetError(path: path, line: 0, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        fstat(descriptor, &status)
        let size = Int(status.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, descriptor, 0)
        guard let address, address != MAP_FAILED else { throw DatasetError(path: path, line: 0, reason: "cannot map: \(String(cString: strerror(errno)))") }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        madvise(address, size, MADV_SEQUENTIAL)
    }

    deinit { if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) } }

    /// The bytes of a writable mapping.
    var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(mutating: bytes) }

    /// Writes a writable mapping's changes back to its file.
    func flush() throws(DatasetError) {
        guard let base = bytes.baseAddress else { return }
        guard msync(UnsafeMutableRawPointer(mutating: base), bytes.count, MS_SYNC) == 0 else {
            throw DatasetError(path: path, line: 0, reason: "cannot write back: \(String(cString: strerror(errno)))")
        }
    }

    /// Drops this process's pages of the bytes before `offset` (they stay in the page cache):
    /// a mapping read front to back keeps only what it reads now resident, however large the file.
    func release(before offset: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let end = min(offset, bytes.count) / page * page
        guard end > 0, let base = bytes.baseAddress else { return }
        madvise(UnsafeMutableRawPointer(mutating: base), end, MADV_DONTNEED)
    }
}

/// Reads a preprocessed dataset (`CriteoBinary`) through memory maps: a sample is found by
/// arithmetic, so each rank touches only its slice of every batch, and skipping reads nothing.
/// Samples are held out and collected exactly as `CriteoTSVReader` does, so the same lines
/// make the same batches in either form.
public final class CriteoBinaryReader: ClickBatchReader, @unchecked Sendable {
    public let directory: String
    public let header: CriteoBinary.Header
    public let holdoutEvery: Int
    public let slice: SampleSlice
    public let heldOut: HeldOutSamples
    public var skippedRows: Int { 0 }
    /// Completed passes over the data.
    public private(set) var epoch = 0

    private let labels: MappedFile, dense: MappedFile
    /// Every table's rows.
    private let rows: [UnsafePointer<Int32>]
    private let rowFiles: [MappedFile]
    /// Next sample of the data, held out or not.
    private var position = 0
    /// The sample before which the mappings' pages were last released.
    private var released = 0
    /// Samples read between releases of the pages behind them.
    private static let releaseEvery = 1 << 18

    public init(directory: String, holdoutEvery: Int = 0, holdoutLimit: Int = 1 << 16, slice: SampleSlice = .whole) throws(DatasetError) {
        header = try CriteoBinary.header(directory)
        let trainingSamples = holdoutEvery > 0 ? header.samples - header.samples / holdoutEvery : header.samples
        guard trainingSamples > 0 else { throw DatasetError(path: directory, line: 0, reason: "no samples to train on (\(header.samples) in all)") }
        self.directory = directory
        self.holdoutEvery = holdoutEvery
        self.slice = slice
        heldOut = HeldOutSamples(limit: holdoutLimit)
        labels = try MappedFile(directory + "/" + CriteoBinary.labelsFile)
        dense = try MappedFile(directory + "/" + CriteoBinary.denseFile)
        rowFiles = try (0..<CriteoLineParser.categoricalFeatures).map { t throws(DatasetError) in try MappedFile(directory + "/" + CriteoBinary.rowsFile(t)) }
        rows = rowFiles.map { $0.bytes.baseAddress.map { $0.assumingMemoryBound(to: Int32.self) } ?? UnsafePointer(bitPattern: 4)! }
    }

    public func nextBatch(size: Int) throws -> ClickBatch? {
        precondition(size % slice.ranks == 0, "a global batch of \(size) does not split over \(slice.ranks) ranks")
        let mine = slice.range(of: size)
        var columns = SampleColumns(count: mine.count, zeroed: false)
        pass(over: mine.lowerBound)
        if holdoutEvery == 0 {
            columns.withSlots { slot in
                var filled = 0
                while filled < mine.count {
                    let run = min(mine.count - filled, header.samples - position)
                    copy(run, samplesFrom: position, to: slot(filled))
                    filled += run
                    pass(over: run)
                }
            }
        } else {
            columns.withSlots { slot in
                for i in 0..<mine.count { copy(advance(), to: slot(i)) }
            }
        }
        pass(over: size - mine.upperBound)
        releasePassedPages()
        return columns.batch(count: mine.count)
    }

    /// Every `releaseEvery` samples, lets go of the pages of the samples passed (and of all
    /// of them after a wrap), so that resident memory stays flat on a dataset of any size.
    private func releasePassedPages() {
        guard position < released || position - released >= Self.releaseEvery else { return }
        let upTo = position < released ? header.samples : position
        labels.release(before: upTo)
        dense.release(before: upTo * 4 * CriteoLineParser.denseFeatures)
        for file in rowFiles { file.release(before: upTo * 4) }
        released = position
    }

    public func firstSamples(_ count: Int) throws -> ClickBatch {
        let n = min(count, header.samples - position)
        var columns = SampleColumns(count: n)
        columns.withSlots { slot in for i in 0..<n { copy(position + i, to: slot(i)) } }
        position += n
        return columns.batch(count: n)
    }

    public func skip(batches: Int, size: Int) throws {
        pass(over: batches * size)
    }

    /// Moves past `count` training samples: by arithmetic when nothing is held out.
    private func pass(over count: Int) {
        guard holdoutEvery == 0 else {
            for _ in 0..<count { _ = advance() }
            return
        }
        let target = position + count
        epoch += target / header.samples
        position = target % header.samples
    }

    /// The next training sample's index, collecting the held-out samples passed on the way.
    private func advance() -> Int {
        while true {
            if position == header.samples {
                position = 0
                epoch += 1
            }
            let sample = position
            position += 1
            guard holdoutEvery > 0, (sample + 1) % holdoutEvery == 0 else { return sample }
            if epoch == 0 && heldOut.count < heldOut.limit {
                let d = dense.bytes.baseAddress!.assumingMemoryBound(to: Float.self) + sample * CriteoLineParser.denseFeatures
                heldOut.append(label: label(sample), dense: UnsafeBufferPointer(start: d, count: CriteoLineParser.denseFeatures),
                               rows: rows.map { $0[sample] })
            }
        }
    }

    @inline(__always)
    private func label(_ sample: Int) -> Float { labels.bytes[sample] == 1 ? 1 : 0 }

    /// Copies `count` consecutive samples from `first` into consecutive slots from `slot`.
    private func copy(_ count: Int, samplesFrom first: Int, to slot: SampleSlot) {
        let labels = self.labels.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + first
        for i in 0..<count { slot.label[i] = labels[i] == 1 ? 1 : 0 }
        let features = CriteoLineParser.denseFeatures
        slot.dense.update(from: dense.bytes.baseAddress!.assumingMemoryBound(to: Float.self) + first * features, count: count * features)
        for (t, table) in rows.enumerated() { (slot.rows + t * slot.rowStride).update(from: table + first, count: count) }
    }

    @inline(__always)
    private func copy(_ sample: Int, to slot: SampleSlot) {
        slot.label.pointee = label(sample)
        let d = dense.bytes.baseAddress!.assumingMemoryBound(to: Float.self) + sample * CriteoLineParser.denseFeatures
        slot.dense.update(from: d, count: CriteoLineParser.denseFeatures)
        for (t, table) in rows.enumerated() { slot.rows[t * slot.rowStride] = table[sample] }
    }
}
