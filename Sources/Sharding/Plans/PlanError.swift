/// Why table specs, a plan, a task or a cost model cannot be used: one line naming the table,
/// rank or file at fault.
public struct PlanError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// Why a planner cannot place `bytes` of `table`: its size against a rank's memory, or how
    /// far the emptiest rank (given what each holds) is from taking it.
    static func noRoom(table: String, bytes: Int, memoryPerRank: Int, usedByRank: [Int]) -> PlanError {
        if bytes > memoryPerRank {
            return PlanError("table \(table) (\(ByteCount(bytes))) is larger than a rank's memory (\(ByteCount(memoryPerRank))) "
                             + "by \(ByteCount(bytes - memoryPerRank))")
        }
        let free = memoryPerRank - (usedByRank.min() ?? 0)
        return PlanError("table \(table) (\(ByteCount(bytes))) fits on no rank: the emptiest has \(ByteCount(free)) free, "
                         + "\(ByteCount(bytes - free)) short")
    }
}
