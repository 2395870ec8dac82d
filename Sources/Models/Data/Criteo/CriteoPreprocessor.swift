import Foundation

/// Writes Criteo TSV (plain, gzip, many files or standard input) as a preprocessed dataset
/// (`CriteoBinary`) in one streaming pass, in memory that does not grow with the data: the
/// arrays are written into a hidden directory beside `out` and renamed into place only when
/// complete, so an interrupted run never leaves a dataset that looks whole. With a frequency
/// threshold, the pass also counts every distinct value per table (memory grows with the
/// distinct values, not the samples), then rewrites the rows in place.
public struct CriteoPreprocessor {
    public var inputs: DataInputs
    public var out: String
    public var categoricals: CriteoBinary.Categoricals
    /// Table rows to hash into (`.hashed` only).
    public var tableRows: [Int]
    public var onBadRow: BadRowPolicy
    /// Replace a dataset already at `out`.
    public var overwrite = false
    /// Samples per write.
    public var chunk = 1 << 16

    public init(inputs: DataInputs, out: String, categoricals: CriteoBinary.Categoricals, tableRows: [Int], onBadRow: BadRowPolicy) {
        self.inputs = inputs
        self.out = out
        self.categoricals = categoricals
        self.tableRows = tableRows
        self.onBadRow = onBadRow
    }

    /// Writes the dataset, calling `progress` with the samples written after every chunk, and
    /// `onSkip` for every malformed row skipped; returns its header.
    @discardableResult
    public func run(onSkip: @escaping (DatasetError) -> Void = { _ in }, progress: (Int) -> Void = { _ in }) throws -> CriteoBinary.Header {
        let manager = FileManager.default
        if manager.fileExists(atPath: out) {
            let holdsData = manager.fileExists(atPath: out + "/" + CriteoBinary.headerFile)
                || !((try? manager.contentsOfDirectory(atPath: out))?.isEmpty ?? false)
            if holdsData && !overwrite {
                throw DatasetError(path: out, line: 0, reason: "already holds data; pass --overwrite to replace it")
            }
        }
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        let staging = parent + "/.\(URL(fileURLWithPath: out).lastPathComponent).partial-\(getpid())"
        try? manager.removeItem(atPath: staging)
        do { try manager.createDirectory(atPath: staging, withIntermediateDirectories: false) } catch {
            throw DatasetError(path: out, line: 0, reason: "cannot create beside it (\(error.localizedDescription))")
        }
        do {
            let header = try write(into: staging, onSkip: onSkip, progress: progress)
            try install(staging)
            return header
        } catch {
            try? manager.removeItem(atPath: staging)
            throw error
        }
    }

    /// Streams every sample into the arrays in `directory`, then writes the header.
    private func write(into directory: String, onSkip: @escaping (DatasetError) -> Void, progress: (Int) -> Void) throws -> CriteoBinary.Header {
        // A frequency threshold counts raw values, folded to 32 bits (Criteo's are 8 hex digits).
        let readRows = categoricals == .hashed ? tableRows : [Int](repeating: 1 << 32, count: CriteoLineParser.categoricalFeatures)
        let reader = try CriteoTSVReader(inputs: inputs, tableRows: readRows, onBadRow: onBadRow)
        reader.onSkip = onSkip
        let labels = try ArrayFile(directory + "/" + CriteoBinary.labelsFile)
        let dense = try ArrayFile(directory + "/" + CriteoBinary.denseFile)
        let rowFiles = try (0..<CriteoLineParser.categoricalFeatures).map { t throws(DatasetError) in
            try ArrayFile(directory + "/" + CriteoBinary.rowsFile(t))
        }
        var counts = categoricals == .hashed ? nil : [[UInt32: Int]](repeating: [:], count: CriteoLineParser.categoricalFeatures)
        var samples = 0
        let tables = CriteoLineParser.categoricalFeatures
        while true {
            let batch = try reader.firstSamples(chunk)
            let n = batch.count
            if n == 0 { break }
            try labels.append(batch.labels.map { UInt8($0) }[...])
            try dense.append(batch.dense[...])
            for t in 0..<tables {
                let column = batch.bags.indices[t * n ..< (t + 1) * n]
                try rowFiles[t].append(column)
                if counts != nil { for row in column { counts![t][UInt32(bitPattern: row), default: 0] += 1 } }
            }
            samples += n
            progress(samples)
            if n < chunk { break }
        }
        try labels.close()
        try dense.close()
        for file in rowFiles { try file.close() }
        var rows = tableRows
        if case .frequency(let minCount) = categoricals, let counts {
            rows = try (0..<tables).map { t in try renumber(directory + "/" + CriteoBinary.rowsFile(t), counts: counts[t], minCount: minCount) }
        }
        let header = CriteoBinary.Header(samples: samples, tableRows: rows, categoricals: categoricals, sources: inputs.paths,
                                         skippedRows: reader.skippedRows)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try JSONFile.writeAtomically(try encoder.encode(header), to: directory + "/" + CriteoBinary.headerFile)
        return header
    }

    /// Rewrites the raw values of one table in `path` as rows: values seen at least `minCount`
    /// times get rows 1... in order of first appearance, the rest row 0. Returns the table's rows.
    private func renumber(_ path: String, counts: [UInt32: Int], minCount: Int) throws -> Int {
        var ids: [UInt32: Int32] = [:]
        let file = try MappedFile(path, writable: true)
        let values = file.mutableBytes.bindMemory(to: Int32.self)
        for i in values.indices {
            let raw = UInt32(bitPattern: values[i])
            if counts[raw, default: 0] < minCount {
                values[i] = 0
            } else if let id = ids[raw] {
                values[i] = id
            } else {
                let id = Int32(ids.count + 1)
                ids[raw] = id
                values[i] = id
            }
        }
        try file.flush()
        return ids.count + 1
    }

    /// Puts the finished `staging` directory at `out`, replacing what was there only now.
    private func install(_ staging: String) throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: out) {
            let old = staging + ".old"
            do {
                try manager.moveItem(atPath: out, toPath: old)
                try manager.moveItem(atPath: staging, toPath: out)
            } catch {
                throw DatasetError(path: out, line: 0, reason: "cannot replace (\(error.localizedDescription))")
            }
            try? manager.removeItem(atPath: old)
        } else if rename(staging, out) != 0 {
            throw DatasetError(path: out, line: 0, reason: "cannot create (\(String(cString: strerror(errno))))")
        }
    }
}

/// An array file written front to back through a buffered stream.
private final class ArrayFile {
    let path: String
    private var file: UnsafeMutablePointer<FILE>?

    init(_ path: String) throws(DatasetError) {
        self.path = path
        guard let file = fopen(path, "wb") else { throw DatasetError(path: path, line: 0, reason: "cannot create: \(String(cString: strerror(errno)))") }
        self.file = file
    }

    func append<T>(_ values: ArraySlice<T>) throws(DatasetError) {
        let (written, expected) = values.withUnsafeBytes { (fwrite($0.baseAddress, 1, $0.count, file), $0.count) }
        guard written == expected else {
            throw DatasetError(path: path, line: 0, reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }

    func close() throws(DatasetError) {
        defer { file = nil }
        guard fflush(file) == 0, fsync(fileno(file)) == 0, fclose(file) == 0 else {
            throw DatasetError(path: path, line: 0, reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }

    deinit { if let file { fclose(file) } }
}
