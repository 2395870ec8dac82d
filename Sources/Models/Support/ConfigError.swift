/// A model shape or option that cannot work, said in one line.
public struct ConfigError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
