/// The kinds of operation the traffic counters keep apart.
public enum TrafficKind: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case barrier, broadcast, pointToPoint, allreduce, reduce, gather, allgather, alltoall, alltoallv

    public var description: String {
        switch self {
        case .barrier: "barrier"
        case .broadcast: "broadcast"
        case .pointToPoint: "send/recv"
        case .allreduce: "allreduce"
        case .reduce: "reduce"
        case .gather: "gather"
        case .allgather: "allgather"
        case .alltoall: "alltoall"
        case .alltoallv: "alltoallv"
        }
    }
}

/// Calls made and payload bytes moved by one rank for one kind of operation.
///
/// Bytes count the caller's payload to and from other ranks, never to itself: a broadcast root
/// sends `n x (size - 1)`, an alltoallv sends the sum of its counts to other ranks, and a
/// reduction counts its contribution as sent and its result as received. They are what the
/// algorithm asks MPI to move, not the wire bytes of MPI's internal schedule.
public struct TrafficCounters: Sendable, Hashable, Codable {
    public var calls: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0

    public init(calls: UInt64 = 0, bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0) {
        self.calls = calls
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
    }

    public static func + (a: Self, b: Self) -> Self {
        .init(calls: a.calls + b.calls, bytesSent: a.bytesSent + b.bytesSent, bytesReceived: a.bytesReceived + b.bytesReceived)
    }

    public static func - (a: Self, b: Self) -> Self {
        .init(calls: a.calls - b.calls, bytesSent: a.bytesSent - b.bytesSent, bytesReceived: a.bytesReceived - b.bytesReceived)
    }
}

/// A snapshot of a communicator's counters, one entry per `TrafficKind`.
public struct TrafficReport: Sendable, Hashable, Codable {
    public internal(set) var counters: [TrafficCounters]

    public init() { counters = Array(repeating: TrafficCounters(), count: TrafficKind.allCases.count) }

    public subscript(kind: TrafficKind) -> TrafficCounters {
        get { counters[kind.rawValue] }
        set { counters[kind.rawValue] = newValue }
    }

    /// All kinds added together.
    public var total: TrafficCounters { counters.reduce(TrafficCounters(), +) }

    /// Counter-wise sum: the traffic of several ranks together.
    public static func + (a: Self, b: Self) -> Self {
        var sum = a
        for i in sum.counters.indices { sum.counters[i] = a.counters[i] + b.counters[i] }
        return sum
    }

    /// Counter-wise difference: the traffic between two snapshots of one communicator.
    public static func - (a: Self, b: Self) -> Self {
        var difference = a
        for i in difference.counters.indices { difference.counters[i] = a.counters[i] - b.counters[i] }
        return difference
    }

    /// The counters as one flat array (calls, sent, received per kind), the form reductions move.
    var flattened: [UInt64] { counters.flatMap { [$0.calls, $0.bytesSent, $0.bytesReceived] } }

    init<Words: Collection<UInt64>>(flattened words: Words) where Words.Index == Int {
        self.init()
        var i = words.startIndex
        for k in counters.indices {
            counters[k] = TrafficCounters(calls: words[i], bytesSent: words[i + 1], bytesReceived: words[i + 2])
            i += 3
        }
    }

    static var flattenedCount: Int { TrafficKind.allCases.count * 3 }
}

/// The live counters of one communicator: three words per kind in one fixed buffer, so a call
/// costs three additions and no array or exclusivity checks. Updated on the MPI thread only.
final class TrafficLedger: @unchecked Sendable {
    // Written only by the thread that makes the job's MPI calls.
    private let words: UnsafeMutablePointer<UInt64>

    init() {
        words = .allocate(capacity: TrafficReport.flattenedCount)
        words.initialize(repeating: 0, count: TrafficReport.flattenedCount)
    }

    deinit { words.deallocate() }

    @inline(__always)
    func record(_ kind: TrafficKind, sent: Int, received: Int) {
        let slot = words + kind.rawValue * 3
        slot[0] &+= 1
        slot[1] &+= UInt64(truncatingIfNeeded: sent)
        slot[2] &+= UInt64(truncatingIfNeeded: received)
    }

    func snapshot() -> TrafficReport {
        TrafficReport(flattened: UnsafeBufferPointer(start: words, count: TrafficReport.flattenedCount)[...])
    }

    func reset() { words.update(repeating: 0, count: TrafficReport.flattenedCount) }
}

extension Communicator {
    /// What this rank has sent and received on this communicator since it was made or reset.
    public func traffic() -> TrafficReport { handle.traffic.snapshot() }

    /// Sets this rank's counters back to zero.
    public func resetTraffic() { handle.traffic.reset() }

    /// Every rank's counters, in rank order, on `root`; `nil` elsewhere. The gather itself is
    /// counted after the snapshot is taken.
    public func gatherTraffic(root: Int = 0) throws(MPIError) -> [TrafficReport]? {
        let mine = traffic().flattened
        guard let all = try gather(mine, root: root) else { return nil }
        let n = TrafficReport.flattenedCount
        return (0..<size).map { r in TrafficReport(flattened: all[(r * n)..<((r + 1) * n)]) }
    }

    /// The sum of every rank's counters on `root`; `nil` elsewhere.
    public func reduceTraffic(root: Int = 0) throws(MPIError) -> TrafficReport? { try reduce(traffic(), root: root) }

    /// The sum of every rank's `report` (counters over some span of its work) on `root`; `nil` elsewhere.
    public func reduce(_ report: TrafficReport, root: Int = 0) throws(MPIError) -> TrafficReport? {
        guard let sum = try reduce(report.flattened, .sum, root: root) else { return nil }
        return TrafficReport(flattened: sum[...])
    }
}
