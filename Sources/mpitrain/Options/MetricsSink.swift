import Foundation

/// Appends one JSON object per line to a metrics file, created (or emptied) at its first record.
final class MetricsSink {
    private var handle: FileHandle?
    private let path: String
    private let encoder: JSONEncoder
    /// Wall-clock time, e.g. 2026-12-07T06:53:09.308Z.
    private let clock = ISO8601DateFormatter()

    /// Checks that `path` can be written, before the run starts; the file is created (and a
    /// previous run's truncated) only by the first record, so a run that fails before it has
    /// anything to say leaves the previous metrics as they were.
    init(path: String) throws {
        try OutputPaths.checkFile(path, "metrics file")
        self.path = path
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        clock.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    }

    /// Appends `record` as one line, with the wall-clock `time` (ISO 8601, UTC) and, for
    /// records that carry none, a `kind`.
    func write<T: Encodable>(_ record: T, kind: String? = nil) throws {
        var data = try encoder.encode(Stamped(record: record, kind: kind, time: clock.string(from: Date())))
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

/// A record with its time and kind beside its own fields, in one JSON object.
private struct Stamped<Record: Encodable>: Encodable {
    let record: Record
    let kind: String?
    let time: String

    private enum Key: String, CodingKey { case kind, time }

    func encode(to encoder: Encoder) throws {
        try record.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(time, forKey: .time)
        if let kind { try container.encode(kind, forKey: .kind) }
    }
}
