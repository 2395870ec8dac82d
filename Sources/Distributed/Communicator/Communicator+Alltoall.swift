import MPIShim

extension Communicator {
    // MARK: - Alltoall

    /// Sends the r-th of `size` equal parts of `send` to rank r, and receives rank r's part for
    /// this rank into the r-th part of `recv` (`MPI_Alltoall`).
    public func alltoall<T: MPIScalar>(_ send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Alltoall")
        guard send.count % size == 0 else {
            throw MPIError(call: "MPI_Alltoall", errorClass: MPI_ERR_COUNT,
                           reason: "MPI_ERR_COUNT: \(send.count) elements do not split into \(size) equal parts")
        }
        try requireCapacity(recv.count, atLeast: send.count, "MPI_Alltoall")
        let count = try mpiCount(send.count / size, "MPI_Alltoall")
        try guarded("MPI_Alltoall") { () throws(MPIError) in
            try check(MPI_Alltoall(send.baseAddress, count, T.mpiDatatype.raw, recv.baseAddress, count,
                                   T.mpiDatatype.raw, raw), "MPI_Alltoall")
        }
        let bytes = Int(count) * MemoryLayout<T>.stride * (size - 1)
        handle.traffic.record(.alltoall, sent: bytes, received: bytes)
    }

    /// `values` cut into `size` equal parts, part r sent to rank r; returns the parts received,
    /// rank after rank (`MPI_Alltoall`).
    public func alltoall<T: MPIScalar>(_ values: [T]) throws(MPIError) -> [T] {
        var result = [T](unsafeUninitializedCapacity: values.count) { _, n in n = values.count }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (recv) throws(MPIError) in try alltoall(send, into: recv) }
        }
        return result
    }

    // MARK: - Alltoallv

    /// Sends each rank its chunk of `send`, gathering the chunks sent here into `recv`
    /// (`MPI_Alltoallv`). Every rank's receive count from r must equal r's send count to it;
    /// with `verifiesMessageSizes` a mismatch throws on every rank.
    public func alltoallv<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, _ sendChunks: Chunks,
        into recv: UnsafeMutableBufferPointer<T>, _ recvChunks: Chunks
    ) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Alltoallv")
        if verifiesMessageSizes {
            try verifyExchange(sendCounts: sendChunks.counts, recvCounts: recvChunks.counts,
                               elementSize: MemoryLayout<T>.stride, "MPI_Alltoallv")
        }
        try sendChunks.withMPIArrays(size: size, capacity: send.count, "MPI_Alltoallv", role: "send") {
            (sendCounts, sendDisplacements) throws(MPIError) in
            try recvChunks.withMPIArrays(size: size, capacity: recv.count, "MPI_Alltoallv", role: "receive") {
                (recvCounts, recvDisplacements) throws(MPIError) in
                try guarded("MPI_Alltoallv") { () throws(MPIError) in
                    try check(MPI_Alltoallv(send.baseAddress, sendCounts, sendDisplacements, T.mpiDatatype.raw,
                                            recv.baseAddress, recvCounts, recvDisplacements, T.mpiDatatype.raw, raw),
                              "MPI_Alltoallv")
                }
            }
        }
        let stride = MemoryLayout<T>.stride
        handle.traffic.record(.alltoallv, sent: sendChunks.countExcluding(rank) * stride,
                              received: recvChunks.countExcluding(rank) * stride)
    }

    /// Starts `alltoallv` and returns at once (`MPI_Ialltoallv`), so the caller can compute
    /// while the exchange is in flight. Both buffers must stay alive and untouched until the
    /// request completes; the request keeps the count arrays MPI reads meanwhile.
    public func ialltoallv<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, _ sendChunks: Chunks,
        into recv: UnsafeMutableBufferPointer<T>, _ recvChunks: Chunks
    ) throws(MPIError) -> Request {
        try MPIRuntime.ensureActive("MPI_Ialltoallv")
        if verifiesMessageSizes {
            try verifyExchange(sendCounts: sendChunks.counts, recvCounts: recvChunks.counts,
                               elementSize: MemoryLayout<T>.stride, "MPI_Ialltoallv")
        }
        try sendChunks.check(size: size, capacity: send.count, "MPI_Ialltoallv", role: "send")
        try recvChunks.check(size: size, capacity: recv.count, "MPI_Ialltoallv", role: "receive")
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: 4 * max(size, 1))
        sendChunks.write(into: counts, size: size)
        recvChunks.write(into: counts + 2 * size, size: size)
        var request = MPIShim_REQUEST_NULL()
        let started = MPI_Ialltoallv(send.baseAddress, counts, counts + size, T.mpiDatatype.raw,
                                     recv.baseAddress, counts + 2 * size, counts + 3 * size, T.mpiDatatype.raw, raw, &request)
        do { try check(started, "MPI_Ialltoallv") } catch {
            counts.deallocate()
            throw error
        }
        let stride = MemoryLayout<T>.stride
        handle.traffic.record(.alltoallv, sent: sendChunks.countExcluding(rank) * stride,
                              received: recvChunks.countExcluding(rank) * stride)
        return Request(raw: request, communicator: self, call: "MPI_Ialltoallv", peer: -1, receivedElementSize: 0,
                       retainedCounts: counts)
    }

    /// Sends `sendCounts[r]` consecutive elements of `values` to rank r and returns what every
    /// rank sent here; the counts travel first, so sizes cannot disagree (`MPI_Alltoallv`).
    public func alltoallv<T: MPIScalar>(_ values: [T], sendCounts: [Int]) throws(MPIError) -> PerRank<T> {
        guard sendCounts.count == size else {
            throw MPIError(call: "MPI_Alltoallv", errorClass: MPI_ERR_ARG,
                           reason: "MPI_ERR_ARG: \(sendCounts.count) send counts for \(size) ranks")
        }
        let sendChunks = Chunks(counts: sendCounts)
        let recvChunks = Chunks(counts: try alltoall(sendCounts.map { Int64($0) }).map { Int($0) })
        var result = [T](unsafeUninitializedCapacity: recvChunks.extent) { _, n in n = recvChunks.extent }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (recv) throws(MPIError) in
                try alltoallv(send, sendChunks, into: recv, recvChunks)
            }
        }
        return PerRank(values: result, chunks: recvChunks)
    }

    /// Checks that what every rank sends to every other matches what that rank expects, in bytes,
    /// so all ranks throw the same error together (one allgather of 2 x size integers).
    func verifyExchange(sendCounts: [Int], recvCounts: [Int], elementSize: Int, _ call: StaticString) throws(MPIError) {
        guard sendCounts.count == size, recvCounts.count == size else {
            throw MPIError(call: "\(call)", errorClass: MPI_ERR_ARG,
                           reason: "MPI_ERR_ARG: \(sendCounts.count) send and \(recvCounts.count) receive counts for \(size) ranks")
        }
        let mine = (sendCounts + recvCounts).map { Int64($0 * elementSize) }
        let all = try allgather(mine)
        for source in 0..<size {
            for target in 0..<size {
                let sends = all[source * 2 * size + target]
                let expects = all[target * 2 * size + size + source]
                if sends != expects {
                    throw MPIError(call: "\(call)", errorClass: MPI_ERR_TRUNCATE,
                                   reason: "MPI_ERR_TRUNCATE: rank \(source) sends \(sends) bytes to rank \(target), which expects \(expects)")
                }
            }
        }
    }
}
