import Foundation

/// Runs `body` with a fresh directory under the system's temporary directory and removes the
/// directory and everything in it afterwards, whether `body` returns or throws.
public func withTemporaryDirectory<R>(_ prefix: String, _ body: (URL) throws -> R) throws -> R {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}
