import MPIShim

/// A group of ranks that talk to each other: typed, throwing wrappers of MPI's calls on one
/// `MPI_Comm`, with traffic counters and an optional watchdog deadline on every blocking call.
///
/// Sendable because the handle is a process-wide id and the job's MPI calls stay on one
/// thread (the watchdog's roll calls use a communicator of their own); copies share the handle
/// and its counters.
public struct Communicator: @unchecked Sendable {
    let handle: Handle
    /// This process's rank in the communicator, 0..<size.
    public let rank: Int
    /// Number of ranks in the communicator.
    public let size: Int
    /// A deadline for every blocking call and wait: past it the job aborts with a message naming
    /// the call and the rank instead of hanging. `nil` (the default) leaves it to
    /// `JobDeadline.timeout`, which by default waits forever.
    public var timeout: Duration?
    /// When true, `alltoallv` first checks that every rank's send counts match what their peers
    /// expect to receive, so a mismatch throws the same error on every rank instead of
    /// truncating on one and hanging the others. Costs one small allgather per call.
    public var verifiesMessageSizes = false

    /// The `MPI_Comm` and what belongs to it: frees sub-communicators when the last copy goes.
    final class Handle: @unchecked Sendable {
        let raw: MPI_Comm
        let owned: Bool
        let name: String
        let traffic = TrafficLedger()

        init(raw: MPI_Comm, owned: Bool, name: String) {
            self.raw = raw
            self.owned = owned
            self.name = name
        }

        deinit {
            if owned && MPIRuntime.isActive {
                var comm: CommSlot = raw
                _ = MPI_Comm_free(&comm)
            }
        }
    }

    init(adopting raw: MPI_Comm, owned: Bool, name: String) throws(MPIError) {
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(MPI_Comm_rank(raw, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(raw, &size), "MPI_Comm_size")
        handle = Handle(raw: raw, owned: owned, name: name)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    var raw: MPI_Comm { handle.raw }

    /// A short name for messages: "world" or the split it came from.
    public var name: String { handle.name }

    /// True on rank 0, the coordinator.
    public var isRoot: Bool { rank == 0 }

    /// The host this rank runs on (`MPI_Get_processor_name`).
    public func processorName() throws(MPIError) -> String {
        try MPIRuntime.ensureActive("MPI_Get_processor_name")
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var length: Int32 = 0
        try check(MPI_Get_processor_name(&text, &length), "MPI_Get_processor_name")
        return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Waits until every rank has called it (`MPI_Barrier`).
    public func barrier() throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Barrier")
        try guarded("MPI_Barrier") { () throws(MPIError) in
            try check(MPI_Barrier(raw), "MPI_Barrier")
        }
        handle.traffic.record(.barrier, sent: 0, received: 0)
    }

    /// Splits into sub-communicators of the ranks that pass the same `color`, ordered by `key`
    /// then by rank (`MPI_Comm_split`). Ranks passing `nil` take part but get `nil` back.
    public func split(color: Int?, key: Int = 0) throws(MPIError) -> Communicator? {
        try MPIRuntime.ensureActive("MPI_Comm_split")
        if let color, color < 0 {
            throw MPIError(call: "MPI_Comm_split", errorClass: MPI_ERR_ARG,
                           reason: "MPI_ERR_ARG: color \(color) is negative; pass nil to opt out")
        }
        let mpiColor: Int32 = try color.map { c throws(MPIError) in try mpiCount(c, "MPI_Comm_split") } ?? MPI_UNDEFINED
        guard let mpiKey = Int32(exactly: key) else {
            throw MPIError(call: "MPI_Comm_split", errorClass: MPI_ERR_ARG, reason: "MPI_ERR_ARG: key \(key) does not fit an int")
        }
        var newComm: CommSlot = MPIShim_COMM_NULL()
        try guarded("MPI_Comm_split") { () throws(MPIError) in
            try check(MPI_Comm_split(raw, mpiColor, mpiKey, &newComm), "MPI_Comm_split")
        }
        guard let color, let newComm = unwrapHandle(newComm), newComm != MPIShim_COMM_NULL() else { return nil }
        try check(MPI_Comm_set_errhandler(newComm, MPIShim_ERRORS_RETURN()), "MPI_Comm_set_errhandler")
        var sub = try Communicator(adopting: newComm, owned: true, name: "\(name)/\(color)")
        sub.timeout = timeout
        sub.verifiesMessageSizes = verifiesMessageSizes
        return sub
    }

    /// Checks that `rank` names a rank of this communicator.
    @inline(__always)
    func checkRank(_ rank: Int, _ call: StaticString, role: String) throws(MPIError) -> Int32 {
        guard rank >= 0 && rank < size else {
            throw MPIError(call: "\(call)", errorClass: MPI_ERR_RANK,
                           reason: "MPI_ERR_RANK: \(role) rank \(rank) is not in 0..<\(size)")
        }
        return Int32(rank)
    }

    /// Runs one blocking MPI call under the watchdog when a timeout is set, here or for the
    /// job (`JobDeadline`).
    @inline(__always)
    func guarded<R>(_ call: StaticString, peer: Int = -1, _ body: () throws(MPIError) -> R) throws(MPIError) -> R {
        guard let timeout = timeout ?? JobDeadline.timeout else { return try body() }
        Watchdog.shared.arm(call: call, peer: peer, rank: rank, size: size, communicator: name, timeout: timeout)
        defer { Watchdog.shared.disarm() }
        return try body()
    }
}
