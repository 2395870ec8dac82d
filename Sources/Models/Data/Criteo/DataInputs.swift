import Foundation

/// The files a data flag names, in reading order: each argument is a path, a glob (`day_*.gz`:
/// its matches in natural order, so day_2 comes before day_10), or `-` for standard input,
/// which must stand alone. Arguments keep the order they are given in.
public struct DataInputs: Sendable, Equatable, CustomStringConvertible {
    public let paths: [String]

    public init(_ arguments: [String]) throws(DatasetError) {
        guard !arguments.isEmpty else { throw DatasetError(path: "--data-path", line: 0, reason: "names no file") }
        if arguments.contains("-") {
            guard arguments.count == 1 else {
                throw DatasetError(path: "-", line: 0, reason: "standard input must be the only input (given with \(arguments.count - 1) others)")
            }
            paths = ["-"]
            return
        }
        var paths: [String] = []
        for argument in arguments {
            guard argument.contains(where: { "*?[".contains($0) }) else {
                paths.append(argument)
                continue
            }
            let matches = try Self.glob(argument)
            guard !matches.isEmpty else { throw DatasetError(path: argument, line: 0, reason: "no file matches this pattern") }
            paths += matches.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        }
        self.paths = paths
    }

    /// One file, named exactly: never a pattern or standard input (a reader's own file).
    init(file path: String) { paths = [path] }

    /// Standard input: read once, never rewound.
    public var isStandardInput: Bool { paths == ["-"] }

    /// Whether an input is a pipe, a device or standard input, which can be read only once
    /// and by one process (`/dev/stdin`, `<(zcat day_0.gz)`, a FIFO).
    public var readsOnce: Bool {
        isStandardInput || paths.contains { path in
            var status = stat()
            return stat(path, &status) == 0 && status.st_mode & S_IFMT != S_IFREG && status.st_mode & S_IFMT != S_IFDIR
        }
    }

    public var description: String {
        if isStandardInput { return "standard input" }
        if paths.count <= 3 { return paths.joined(separator: ", ") }
        return "\(paths.count) files, \(paths[0]) ... \(paths[paths.count - 1])"
    }

    private static func glob(_ pattern: String) throws(DatasetError) -> [String] {
        var matches = glob_t()
        defer { globfree(&matches) }
        let status = Foundation.glob(pattern, 0, nil, &matches)
        if status == GLOB_NOMATCH { return [] }
        guard status == 0 else { throw DatasetError(path: pattern, line: 0, reason: "cannot expand this pattern (glob error \(status))") }
        return (0..<Int(matches.gl_pathc)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }
    }
}

/// The lines of a sequence of files, front to back, each without its line end (and a trailing
/// carriage return); a file's last line may lack its newline. Tracks the file and line number
/// of the current line for errors. `restart` goes back to the first file, except when an
/// input is a pipe or standard input, which are read once.
final class LineStream {
    let inputs: DataInputs
    private let readsOnce: Bool
    private(set) var fileIndex = 0
    /// 1-based number of the current line in its file.
    private(set) var line = 0
    /// Whether the current line is its file's last and had no newline (a cut pipe or file).
    private(set) var unterminated = false
    private var stream: ByteStream?
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0, atEndOfFile = false

    /// Lines longer than this are not text of this layout.
    static let longestLine = 1 << 20

    init(_ inputs: DataInputs, bufferBytes: Int = 1 << 20) throws(DatasetError) {
        self.inputs = inputs
        readsOnce = inputs.readsOnce
        buffer = .allocate(byteCount: max(bufferBytes, 1 << 12), alignment: 64)
        stream = try openByteStream(inputs.paths[0])
    }

    deinit { buffer.deallocate() }

    var path: String { inputs.paths[fileIndex] }
    var displayPath: String { path == "-" ? "standard input" : path }

    /// The next line, valid until the next call; nil after the last file's last line.
    func next() throws(DatasetError) -> UnsafeBufferPointer<UInt8>? {
        while true {
            let base = buffer.baseAddress!
            if start < end, let newline = memchr(base + start, 0x0a, end - start) {
                let length = base.distance(to: UnsafeMutableRawPointer(newline)) - start
                defer { start += length + 1 }
                return lineAt(start, length: length, terminated: true)
            }
            if atEndOfFile {
                if start < end {
                    defer { start = end }
                    return lineAt(start, length: end - start, terminated: false)
                }
                guard fileIndex + 1 < inputs.paths.count else { return nil }
                fileIndex += 1
                try open(fileIndex)
                continue
            }
            try refill()
        }
    }

    /// Back to the first line of the first file. False on a pipe or standard input, which cannot be reread.
    func restart() throws(DatasetError) -> Bool {
        guard !readsOnce else { return false }
        fileIndex = 0
        try open(0)
        return true
    }

    private func open(_ index: Int) throws(DatasetError) {
        stream = nil
        stream = try openByteStream(inputs.paths[index])
        start = 0
        end = 0
        line = 0
        atEndOfFile = false
    }

    private func lineAt(_ offset: Int, length: Int, terminated: Bool) -> UnsafeBufferPointer<UInt8> {
        line += 1
        unterminated = !terminated
        let bytes = (buffer.baseAddress! + offset).assumingMemoryBound(to: UInt8.self)
        let trimmed = length > 0 && bytes[length - 1] == 0x0d ? length - 1 : length
        return UnsafeBufferPointer(start: bytes, count: trimmed)
    }

    /// Moves the partial line to the front and reads more after it, growing the buffer for a
    /// long line up to `longestLine`.
    private func refill() throws(DatasetError) {
        let base = buffer.baseAddress!
        if start > 0 {
            if end > start { memmove(base, base + start, end - start) }
            end -= start
            start = 0
        }
        if end == buffer.count {
            guard buffer.count < Self.longestLine else {
                throw DatasetError(path: displayPath, line: line + 1, reason: "a line longer than \(Self.longestLine >> 20) MiB: not text of this layout")
            }
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: min(buffer.count * 2, Self.longestLine), alignment: 64)
            grown.copyMemory(from: UnsafeRawBufferPointer(buffer))
            buffer.deallocate()
            buffer = grown
        }
        let n = try stream!.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
        if n == 0 { atEndOfFile = true } else { end += n }
    }
}
