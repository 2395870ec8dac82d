import MPIShim

// The hot path is the buffer-pointer form of each collective: caller memory straight to MPI.
// Array forms call it inside `withUnsafe...BufferPointer`; `&array` forms work in place and
// value forms return a new array (as MPI.jl's `Allreduce!` and `Allreduce`).

extension Communicator {
    // MARK: - Broadcast

    /// Replaces `buffer` on every rank with root's (`MPI_Bcast`).
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Bcast")
        let mpiRoot = try checkRank(root, "MPI_Bcast", role: "root")
        let count = try mpiCount(buffer.count, "MPI_Bcast")
        try guarded("MPI_Bcast") { () throws(MPIError) in
            try check(MPI_Bcast(buffer.baseAddress, count, T.mpiDatatype.raw, mpiRoot, raw), "MPI_Bcast")
        }
        let bytes = buffer.count * MemoryLayout<T>.stride
        handle.traffic.record(.broadcast, sent: rank == root ? bytes * (size - 1) : 0, received: rank == root ? 0 : bytes)
    }

    /// Replaces `values` on every rank with root's; every rank passes the same count (`MPI_Bcast`).
    public func broadcast<T: MPIScalar>(_ values: inout [T], root: Int) throws(MPIError) {
        try values.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try broadcast(buffer, root: root) }
    }

    /// Root's `values`, whatever their count, on every rank; other ranks' arguments are ignored.
    public func broadcast<T: MPIScalar>(_ values: [T], root: Int) throws(MPIError) -> [T] {
        var count = [Int64(values.count)]
        try broadcast(&count, root: root)
        var result = rank == root ? values : [T](unsafeUninitializedCapacity: Int(count[0])) { _, n in n = Int(count[0]) }
        try broadcast(&result, root: root)
        return result
    }

    // MARK: - Allreduce

    /// Replaces `buffer` on every rank with `op` over all ranks' buffers (`MPI_Allreduce`, in place).
    public func allreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Allreduce")
        let count = try mpiCount(buffer.count, "MPI_Allreduce")
        try guarded("MPI_Allreduce") { () throws(MPIError) in
            try check(MPI_Allreduce(MPIShim_IN_PLACE(), buffer.baseAddress, count, T.mpiDatatype.raw, op.raw, raw),
                      "MPI_Allreduce")
        }
        recordReduction(.allreduce, bytes: buffer.count * MemoryLayout<T>.stride, receives: true)
    }

    /// Starts the in-place `allreduce` of `buffer` and returns at once (`MPI_Iallreduce`), so
    /// the caller can compute while it is in flight. `buffer` must stay alive and untouched
    /// until the request completes.
    public func iallreduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp) throws(MPIError) -> Request {
        try MPIRuntime.ensureActive("MPI_Iallreduce")
        let count = try mpiCount(buffer.count, "MPI_Iallreduce")
        var request = MPIShim_REQUEST_NULL()
        try check(MPI_Iallreduce(MPIShim_IN_PLACE(), buffer.baseAddress, count, T.mpiDatatype.raw, op.raw, raw, &request),
                  "MPI_Iallreduce")
        recordReduction(.allreduce, bytes: buffer.count * MemoryLayout<T>.stride, receives: true)
        return Request(raw: request, communicator: self, call: "MPI_Iallreduce", peer: -1, receivedElementSize: 0)
    }

    /// Writes `op` over all ranks' `send` into `recv` on every rank (`MPI_Allreduce`).
    public func allreduce<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>, _ op: ReduceOp
    ) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Allreduce")
        try requireCapacity(recv.count, atLeast: send.count, "MPI_Allreduce")
        let count = try mpiCount(send.count, "MPI_Allreduce")
        try guarded("MPI_Allreduce") { () throws(MPIError) in
            try check(MPI_Allreduce(send.baseAddress, recv.baseAddress, count, T.mpiDatatype.raw, op.raw, raw),
                      "MPI_Allreduce")
        }
        recordReduction(.allreduce, bytes: send.count * MemoryLayout<T>.stride, receives: true)
    }

    /// Replaces `values` with `op` over all ranks (`MPI_Allreduce`, in place).
    public func allreduce<T: MPIScalar>(_ values: inout [T], _ op: ReduceOp) throws(MPIError) {
        try values.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try allreduce(buffer, op) }
    }

    /// `op` over all ranks' `values` (`MPI_Allreduce`).
    public func allreduce<T: MPIScalar>(_ values: [T], _ op: ReduceOp) throws(MPIError) -> [T] {
        var result = values
        try allreduce(&result, op)
        return result
    }

    /// `op` over one value from every rank (`MPI_Allreduce`).
    public func allreduce<T: MPIScalar>(_ value: T, _ op: ReduceOp) throws(MPIError) -> T {
        try allreduce([value], op)[0]
    }

    // MARK: - Reduce

    /// On `root`, replaces `buffer` with `op` over all ranks' buffers; other ranks' buffers are
    /// left as they are (`MPI_Reduce`).
    public func reduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReduceOp, root: Int) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Reduce")
        let mpiRoot = try checkRank(root, "MPI_Reduce", role: "root")
        let count = try mpiCount(buffer.count, "MPI_Reduce")
        try guarded("MPI_Reduce") { () throws(MPIError) in
            let send: UnsafeRawPointer? = rank == root ? UnsafeRawPointer(MPIShim_IN_PLACE()) : UnsafeRawPointer(buffer.baseAddress)
            let recv: UnsafeMutableRawPointer? = rank == root ? UnsafeMutableRawPointer(buffer.baseAddress) : nil
            try check(MPI_Reduce(send, recv, count, T.mpiDatatype.raw, op.raw, mpiRoot, raw), "MPI_Reduce")
        }
        recordReduction(.reduce, bytes: buffer.count * MemoryLayout<T>.stride, receives: rank == root)
    }

    /// `op` over all ranks' `values` on `root`; `nil` elsewhere (`MPI_Reduce`).
    public func reduce<T: MPIScalar>(_ values: [T], _ op: ReduceOp, root: Int) throws(MPIError) -> [T]? {
        var result = values
        try result.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try reduce(buffer, op, root: root) }
        return rank == root ? result : nil
    }

    // MARK: - Gather

    /// Gathers `send` from every rank into `recv` on `root`, rank after rank; `recv` holds
    /// `size x send.count` elements on root and is ignored elsewhere (`MPI_Gather`).
    public func gather<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>?, root: Int
    ) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Gather")
        let mpiRoot = try checkRank(root, "MPI_Gather", role: "root")
        let count = try mpiCount(send.count, "MPI_Gather")
        if rank == root { try requireCapacity(recv?.count ?? 0, atLeast: send.count * size, "MPI_Gather") }
        try guarded("MPI_Gather") { () throws(MPIError) in
            try check(MPI_Gather(send.baseAddress, count, T.mpiDatatype.raw,
                                 rank == root ? recv?.baseAddress : nil, count, T.mpiDatatype.raw, mpiRoot, raw),
                      "MPI_Gather")
        }
        let bytes = send.count * MemoryLayout<T>.stride
        handle.traffic.record(.gather, sent: rank == root ? 0 : bytes, received: rank == root ? bytes * (size - 1) : 0)
    }

    /// Every rank's `values` (all of one count) concatenated on `root`; `nil` elsewhere (`MPI_Gather`).
    public func gather<T: MPIScalar>(_ values: [T], root: Int) throws(MPIError) -> [T]? {
        var result = [T](unsafeUninitializedCapacity: rank == root ? values.count * size : 0) { _, n in
            n = rank == root ? values.count * size : 0
        }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (recv) throws(MPIError) in try gather(send, into: recv, root: root) }
        }
        return rank == root ? result : nil
    }

    /// Gathers parts of different lengths into `recv` on `root` at `chunks` (`MPI_Gatherv`);
    /// `recv` and `chunks` are ignored on other ranks.
    public func gatherv<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>?, chunks: Chunks?, root: Int
    ) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Gatherv")
        let mpiRoot = try checkRank(root, "MPI_Gatherv", role: "root")
        let count = try mpiCount(send.count, "MPI_Gatherv")
        let call = { (counts: UnsafePointer<Int32>?, displacements: UnsafePointer<Int32>?) throws(MPIError) in
            try self.guarded("MPI_Gatherv") { () throws(MPIError) in
                try check(MPI_Gatherv(send.baseAddress, count, T.mpiDatatype.raw, recv?.baseAddress, counts,
                                      displacements, T.mpiDatatype.raw, mpiRoot, self.raw), "MPI_Gatherv")
            }
        }
        let bytes = send.count * MemoryLayout<T>.stride
        if rank == root {
            let chunks = chunks ?? Chunks(counts: [])
            try chunks.withMPIArrays(size: size, capacity: recv?.count ?? 0, "MPI_Gatherv", role: "receive") {
                (counts, displacements) throws(MPIError) in try call(counts, displacements)
            }
            handle.traffic.record(.gather, sent: 0, received: chunks.countExcluding(rank) * MemoryLayout<T>.stride)
        } else {
            try call(nil, nil)
            handle.traffic.record(.gather, sent: bytes, received: 0)
        }
    }

    /// Every rank's `values`, of any lengths, on `root`; `nil` elsewhere (`MPI_Gatherv`).
    public func gatherv<T: MPIScalar>(_ values: [T], root: Int) throws(MPIError) -> PerRank<T>? {
        let counts = try gather([Int64(values.count)], root: root)
        let chunks = counts.map { Chunks(counts: $0.map { Int($0) }) }
        var result = [T](unsafeUninitializedCapacity: chunks?.extent ?? 0) { _, n in n = chunks?.extent ?? 0 }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (recv) throws(MPIError) in
                try gatherv(send, into: recv, chunks: chunks, root: root)
            }
        }
        return chunks.map { PerRank(values: result, chunks: $0) }
    }

    // MARK: - Allgather

    /// Gathers `send` from every rank into `recv` on every rank, rank after rank (`MPI_Allgather`).
    public func allgather<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Allgather")
        try requireCapacity(recv.count, atLeast: send.count * size, "MPI_Allgather")
        let count = try mpiCount(send.count, "MPI_Allgather")
        try guarded("MPI_Allgather") { () throws(MPIError) in
            try check(MPI_Allgather(send.baseAddress, count, T.mpiDatatype.raw, recv.baseAddress, count,
                                    T.mpiDatatype.raw, raw), "MPI_Allgather")
        }
        let bytes = send.count * MemoryLayout<T>.stride * (size - 1)
        handle.traffic.record(.allgather, sent: bytes, received: bytes)
    }

    /// Every rank's `values` (all of one count) concatenated, on every rank (`MPI_Allgather`).
    public func allgather<T: MPIScalar>(_ values: [T]) throws(MPIError) -> [T] {
        var result = [T](unsafeUninitializedCapacity: values.count * size) { _, n in n = values.count * size }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (recv) throws(MPIError) in try allgather(send, into: recv) }
        }
        return result
    }

    /// Gathers parts of different lengths into `recv` at `chunks` on every rank (`MPI_Allgatherv`).
    public func allgatherv<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>, chunks: Chunks
    ) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Allgatherv")
        let count = try mpiCount(send.count, "MPI_Allgatherv")
        try chunks.withMPIArrays(size: size, capacity: recv.count, "MPI_Allgatherv", role: "receive") {
            (counts, displacements) throws(MPIError) in
            try guarded("MPI_Allgatherv") { () throws(MPIError) in
                try check(MPI_Allgatherv(send.baseAddress, count, T.mpiDatatype.raw, recv.baseAddress, counts,
                                         displacements, T.mpiDatatype.raw, raw), "MPI_Allgatherv")
            }
        }
        let stride = MemoryLayout<T>.stride
        handle.traffic.record(.allgather, sent: send.count * stride * (size - 1),
                              received: chunks.countExcluding(rank) * stride)
    }

    /// Every rank's `values`, of any lengths, on every rank (`MPI_Allgatherv`).
    public func allgatherv<T: MPIScalar>(_ values: [T]) throws(MPIError) -> PerRank<T> {
        let chunks = Chunks(counts: try allgather([Int64(values.count)]).map { Int($0) })
        var result = [T](unsafeUninitializedCapacity: chunks.extent) { _, n in n = chunks.extent }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (recv) throws(MPIError) in
                try allgatherv(send, into: recv, chunks: chunks)
            }
        }
        return PerRank(values: result, chunks: chunks)
    }

    // MARK: - Internals

    /// Counts a reduction: the contribution as sent, the result (where one arrives) as received.
    @inline(__always)
    func recordReduction(_ kind: TrafficKind, bytes: Int, receives: Bool) {
        let moved = size > 1 ? bytes : 0
        handle.traffic.record(kind, sent: moved, received: receives ? moved : 0)
    }

    @inline(__always)
    func requireCapacity(_ capacity: Int, atLeast needed: Int, _ call: StaticString) throws(MPIError) {
        if capacity < needed {
            throw MPIError(call: "\(call)", errorClass: MPI_ERR_BUFFER,
                           reason: "MPI_ERR_BUFFER: receive buffer holds \(capacity) elements, \(needed) needed")
        }
    }
}
