/// Why table specs, a plan, a task or a cost model cannot be used: one line naming the table,
/// rank or file at fault.
public struct PlanError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// Why a planner cannot place `bytes` of `table`: its size against a rank's memory, or how
    /// far the emptiest rank (given what each holds) is from taking it.
    /// With `ranks`, the planner could also cut the table by rows over that many ranks, and
    /// says how far the ranks' free memory together falls short.
    static func noRoom(table: String, bytes: Int, memoryPerRank: Int, usedByRank: [Int], ranks: Int? = nil) -> PlanError {
        if let ranks {
            let free = usedByRank.reduce(0) { $0 + max(0, memoryPerRank - $1) }
            return PlanError("table \(table) (\(ByteCount(bytes))) fits on no rank, nor cut by rows over up to \(ranks) ranks: "
                             + "they have \(ByteCount(free)) free in all, \(ByteCount(max(bytes - free, 0))) short")
        }
        if bytes > memoryPerRank {
            return PlanError("table \(table) (\(ByteCount(bytes))) is larger than a rank's memory (\(ByteCount(memoryPerRank))) "
                             + "by \(ByteCount(bytes - memoryPerRank))")
        }
        let free = memoryPerRank - (usedByRank.min() ?? 0)
        return PlanError("table \(table) (\(ByteCount(bytes))) fits on no rank: the emptiest has \(ByteCount(free)) free, "
                         + "\(ByteCount(bytes - free)) short")
    }
}
