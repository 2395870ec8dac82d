import Foundation

/// Appends one JSON object per line to a metrics file, created (or emptied) at its first record.
final class MetricsSink {
    private var handle: FileHandle?
    private let path: String
    private let encoder: JSONEncoder

    /// Checks that `path` can be written, before the run starts; the file is created (and a
    /// previous run's truncated) only by the first record, so a run that fails before it has
    /// anything to say leaves the previous metrics as they were.
    init(path: String) throws {
        try OutputPaths.checkFile(path, "metrics file")
        self.path = path
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
    }

    func write<T: Encodable>(_ record: T) throws {
        var data = try encoder.encode(record)
        data.append(0x0a)
        try open().write(data)
    }

    private func open() throws -> FileHandle {
        if let handle { return handle }
        // open(2), not a file manager's create: a device such as /dev/null is written into, not replaced.
        let descriptor = Foundation.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw CommandError("\(path): cannot create the metrics file (\(String(cString: strerror(errno))))") }
        let opened = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        handle = opened
        return opened
    }

    deinit { try? handle?.close() }
}
