/// Why table specs, a plan, a task or a cost model cannot be used: one line naming the table,
/// rank or file at fault.
public struct PlanError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
