import MPIShim

/// A non-blocking send, receive or collective in flight. Wait on it once; a request dropped
/// unwaited is waited for when it goes out of scope, so its buffer is never written after it
/// is freed.
public struct Request: ~Copyable {
    var raw: RequestSlot
    let communicator: Communicator
    let call: StaticString
    let peer: Int
    /// Element size of a receive, for counting its bytes on completion; 0 for sends.
    let receivedElementSize: Int
    /// Count and displacement arrays MPI may read until a `v` collective completes.
    var retainedCounts: UnsafeMutablePointer<Int32>?

    init(raw: RequestSlot, communicator: Communicator, call: StaticString, peer: Int, receivedElementSize: Int,
         retainedCounts: UnsafeMutablePointer<Int32>? = nil) {
        self.raw = raw
        self.communicator = communicator
        self.call = call
        self.peer = peer
        self.receivedElementSize = receivedElementSize
        self.retainedCounts = retainedCounts
    }

    /// Blocks until the operation completes (`MPI_Wait`); for a receive, where it came from and
    /// how many elements arrived, for a send the destination and 0.
    @discardableResult
    public consuming func wait() throws(MPIError) -> ReceiveStatus {
        if let failure { throw failure }
        try MPIRuntime.ensureActive("MPI_Wait")
        var status = MPI_Status()
        // Named by the call that started it: what a watchdog message should say.
        try communicator.guarded(call, peer: peer) { () throws(MPIError) in
            try check(MPI_Wait(&raw, &status), "MPI_Wait")
        }
        return complete(status)
    }

    /// True once the operation has completed (`MPI_Test`); then `wait()` returns at once.
    public mutating func test() throws(MPIError) -> Bool {
        try MPIRuntime.ensureActive("MPI_Test")
        var done: Int32 = 0
        var status = MPI_Status()
        try check(MPI_Test(&raw, &done, &status), "MPI_Test")
        if done != 0 { pendingStatus = complete(status) }
        return done != 0
    }

    /// Lets the operation move on without blocking (one `MPI_Test`): MPI progresses only
    /// inside its calls, so long work between the start and `wait` calls this now and then.
    /// An error is kept for `wait` to throw.
    public mutating func progress() {
        guard failure == nil, pendingStatus == nil else { return }
        do { _ = try test() } catch { failure = error }
    }

    private var pendingStatus: ReceiveStatus?
    private var failure: MPIError?

    private func complete(_ status: MPI_Status) -> ReceiveStatus {
        if let pendingStatus { return pendingStatus }
        guard receivedElementSize > 0 else { return ReceiveStatus(source: peer, tag: 0, count: 0) }
        var status = status
        var bytes: Int32 = 0
        _ = MPI_Get_count(&status, MPIDatatype.uint8.raw, &bytes)
        communicator.handle.traffic.record(.pointToPoint, sent: 0, received: Int(bytes))
        return ReceiveStatus(source: Int(status.MPI_SOURCE), tag: Int(status.MPI_TAG), count: Int(bytes) / receivedElementSize)
    }

    deinit {
        var pending = raw
        if pending != MPIShim_REQUEST_NULL() && MPIRuntime.isActive {
            var status = MPI_Status()
            _ = MPI_Wait(&pending, &status)
        }
        retainedCounts?.deallocate()
    }
}

/// Many requests waited for together (`MPI_Waitall`), e.g. one pipeline step's sends and receives.
public struct RequestGroup: ~Copyable {
    private var raws: [RequestSlot] = []
    private var elementSizes: [Int] = []
    private var communicators: [Communicator] = []
    private var retainedCounts: [UnsafeMutablePointer<Int32>] = []

    public init() {}

    /// Number of requests not yet waited for.
    public var count: Int { raws.count }

    /// Adds a request; the group now owns it.
    public mutating func append(_ request: consuming Request) {
        raws.append(request.raw)
        elementSizes.append(request.receivedElementSize)
        communicators.append(request.communicator)
        if let counts = request.retainedCounts { retainedCounts.append(counts) }
        request.retainedCounts = nil
        request.raw = MPIShim_REQUEST_NULL()
    }

    /// Blocks until every request completes (`MPI_Waitall`), then empties the group.
    public mutating func waitAll() throws(MPIError) {
        guard !raws.isEmpty, let first = communicators.first else { return }
        try MPIRuntime.ensureActive("MPI_Waitall")
        var statuses = [MPI_Status](repeating: MPI_Status(), count: raws.count)
        let count = try mpiCount(raws.count, "MPI_Waitall")
        try first.guarded("MPI_Waitall") { () throws(MPIError) in
            try check(MPI_Waitall(count, &raws, &statuses), "MPI_Waitall")
        }
        for i in raws.indices where elementSizes[i] > 0 {
            var bytes: Int32 = 0
            _ = MPI_Get_count(&statuses[i], MPIDatatype.uint8.raw, &bytes)
            communicators[i].handle.traffic.record(.pointToPoint, sent: 0, received: Int(bytes))
        }
        raws.removeAll(keepingCapacity: true)
        elementSizes.removeAll(keepingCapacity: true)
        communicators.removeAll(keepingCapacity: true)
        releaseCounts()
    }

    private mutating func releaseCounts() {
        for counts in retainedCounts { counts.deallocate() }
        retainedCounts.removeAll()
    }

    deinit {
        var pending = raws
        if !pending.isEmpty && MPIRuntime.isActive {
            _ = MPI_Waitall(Int32(pending.count), &pending, MPIShim_STATUSES_IGNORE())
        }
        for counts in retainedCounts { counts.deallocate() }
    }
}
