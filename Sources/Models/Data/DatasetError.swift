/// Input data that cannot be read: names the file, the line (1-based, 0 when the whole file is
/// at fault) and what is wrong.
public struct DatasetError: Error, Hashable, CustomStringConvertible, Sendable {
    public let path: String
    public let line: Int
    public let reason: String
    /// Found by one rank alone (a bad row in its slice of a batch), so that rank must say so.
    public var foundByOneRank = false

    public init(path: String, line: Int, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    public var description: String { line > 0 ? "\(path):\(line): \(reason)" : "\(path): \(reason)" }
}
