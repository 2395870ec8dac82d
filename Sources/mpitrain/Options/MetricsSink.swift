import Foundation

/// Appends one JSON object per line to a metrics file, created (or emptied) at start.
final class MetricsSink {
    private let handle: FileHandle
    private let path: String
    private let encoder: JSONEncoder

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CommandError("\(path): cannot create the metrics file")
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw CommandError("\(path): cannot open for writing") }
        self.handle = handle
        self.path = path
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
    }

    func write<T: Encodable>(_ record: T) throws {
        var data = try encoder.encode(record)
        data.append(0x0a)
        handle.write(data)
    }

    deinit { try? handle.close() }
}
