import MPIShim

/// Where a received message came from and how many elements it held.
public struct ReceiveStatus: Sendable, Hashable {
    public let source: Int
    public let tag: Int
    public let count: Int
}

extension Communicator {
    /// Matches a message from any rank when passed as `from:`.
    public static let anySource: Int? = nil
    /// Matches a message with any tag when passed as `tag:`.
    public static let anyTag: Int? = nil

    // MARK: - Blocking

    /// Sends `buffer` to `destination` (`MPI_Send`).
    public func send<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws(MPIError) {
        try MPIRuntime.ensureActive("MPI_Send")
        let peer = try checkRank(destination, "MPI_Send", role: "destination")
        let mpiTag = try checkTag(tag, "MPI_Send")
        let count = try mpiCount(buffer.count, "MPI_Send")
        try guarded("MPI_Send", peer: destination) { () throws(MPIError) in
            try check(MPI_Send(buffer.baseAddress, count, T.mpiDatatype.raw, peer, mpiTag, raw), "MPI_Send")
        }
        handle.traffic.record(.pointToPoint, sent: buffer.count * MemoryLayout<T>.stride, received: 0)
    }

    /// Sends `values` to `destination` (`MPI_Send`).
    public func send<T: MPIScalar>(_ values: [T], to destination: Int, tag: Int = 0) throws(MPIError) {
        try values.withUnsafeBufferPointer { (buffer) throws(MPIError) in try send(buffer, to: destination, tag: tag) }
    }

    /// Receives one message of at most `buffer.count` elements (`MPI_Recv`); `nil` source or tag
    /// matches any.
    @discardableResult
    public func receive<T: MPIScalar>(
        into buffer: UnsafeMutableBufferPointer<T>, from source: Int?, tag: Int? = 0
    ) throws(MPIError) -> ReceiveStatus {
        try MPIRuntime.ensureActive("MPI_Recv")
        let peer = try source.map { s throws(MPIError) in try checkRank(s, "MPI_Recv", role: "source") } ?? MPIShim_ANY_SOURCE()
        let mpiTag = try tag.map { t throws(MPIError) in try checkTag(t, "MPI_Recv") } ?? MPIShim_ANY_TAG()
        let count = try mpiCount(buffer.count, "MPI_Recv")
        var status = MPI_Status()
        try guarded("MPI_Recv", peer: source ?? -1) { () throws(MPIError) in
            try check(MPI_Recv(buffer.baseAddress, count, T.mpiDatatype.raw, peer, mpiTag, raw, &status), "MPI_Recv")
        }
        let received = try receivedStatus(status, T.self)
        handle.traffic.record(.pointToPoint, sent: 0, received: received.count * MemoryLayout<T>.stride)
        return received
    }

    /// Receives one message of any length (`MPI_Probe`, `MPI_Get_count`, `MPI_Recv`).
    public func receive<T: MPIScalar>(_: T.Type, from source: Int?, tag: Int? = 0) throws(MPIError) -> (values: [T], status: ReceiveStatus) {
        try MPIRuntime.ensureActive("MPI_Probe")
        let peer = try source.map { s throws(MPIError) in try checkRank(s, "MPI_Probe", role: "source") } ?? MPIShim_ANY_SOURCE()
        let mpiTag = try tag.map { t throws(MPIError) in try checkTag(t, "MPI_Probe") } ?? MPIShim_ANY_TAG()
        var status = MPI_Status()
        try guarded("MPI_Probe", peer: source ?? -1) { () throws(MPIError) in
            try check(MPI_Probe(peer, mpiTag, raw, &status), "MPI_Probe")
        }
        let probed = try receivedStatus(status, T.self)
        var values = [T](unsafeUninitializedCapacity: probed.count) { _, n in n = probed.count }
        let status2 = try values.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in
            try receive(into: buffer, from: probed.source, tag: probed.tag)
        }
        return (values, status2)
    }

    /// Sends `send` to `destination` while receiving from `source` into `recv` (`MPI_Sendrecv`).
    @discardableResult
    public func sendReceive<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>, to destination: Int, sendTag: Int = 0,
        into recv: UnsafeMutableBufferPointer<T>, from source: Int, receiveTag: Int = 0
    ) throws(MPIError) -> ReceiveStatus {
        try MPIRuntime.ensureActive("MPI_Sendrecv")
        let dest = try checkRank(destination, "MPI_Sendrecv", role: "destination")
        let src = try checkRank(source, "MPI_Sendrecv", role: "source")
        let stag = try checkTag(sendTag, "MPI_Sendrecv"), rtag = try checkTag(receiveTag, "MPI_Sendrecv")
        let sendCount = try mpiCount(send.count, "MPI_Sendrecv"), recvCount = try mpiCount(recv.count, "MPI_Sendrecv")
        var status = MPI_Status()
        try guarded("MPI_Sendrecv", peer: source) { () throws(MPIError) in
            try check(MPI_Sendrecv(send.baseAddress, sendCount, T.mpiDatatype.raw, dest, stag,
                                   recv.baseAddress, recvCount, T.mpiDatatype.raw, src, rtag, raw, &status),
                      "MPI_Sendrecv")
        }
        let received = try receivedStatus(status, T.self)
        handle.traffic.record(.pointToPoint, sent: send.count * MemoryLayout<T>.stride,
                              received: received.count * MemoryLayout<T>.stride)
        return received
    }

    // MARK: - Non-blocking

    /// Starts sending `buffer` to `destination` (`MPI_Isend`); the buffer must stay alive and
    /// unchanged until the request completes.
    public func isend<T: MPIScalar>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws(MPIError) -> Request {
        try MPIRuntime.ensureActive("MPI_Isend")
        let peer = try checkRank(destination, "MPI_Isend", role: "destination")
        let mpiTag = try checkTag(tag, "MPI_Isend")
        let count = try mpiCount(buffer.count, "MPI_Isend")
        var request = MPIShim_REQUEST_NULL()
        try check(MPI_Isend(buffer.baseAddress, count, T.mpiDatatype.raw, peer, mpiTag, raw, &request), "MPI_Isend")
        handle.traffic.record(.pointToPoint, sent: buffer.count * MemoryLayout<T>.stride, received: 0)
        return Request(raw: request, communicator: self, call: "MPI_Isend", peer: destination, receivedElementSize: 0)
    }

    /// Starts receiving one message into `buffer` (`MPI_Irecv`); the buffer must stay alive and
    /// untouched until the request completes. Received bytes are counted on completion.
    public func irecv<T: MPIScalar>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int?, tag: Int? = 0) throws(MPIError) -> Request {
        try MPIRuntime.ensureActive("MPI_Irecv")
        let peer = try source.map { s throws(MPIError) in try checkRank(s, "MPI_Irecv", role: "source") } ?? MPIShim_ANY_SOURCE()
        let mpiTag = try tag.map { t throws(MPIError) in try checkTag(t, "MPI_Irecv") } ?? MPIShim_ANY_TAG()
        let count = try mpiCount(buffer.count, "MPI_Irecv")
        var request = MPIShim_REQUEST_NULL()
        try check(MPI_Irecv(buffer.baseAddress, count, T.mpiDatatype.raw, peer, mpiTag, raw, &request), "MPI_Irecv")
        return Request(raw: request, communicator: self, call: "MPI_Irecv", peer: source ?? -1,
                       receivedElementSize: MemoryLayout<T>.stride)
    }

    // MARK: - Internals

    @inline(__always)
    func checkTag(_ tag: Int, _ call: StaticString) throws(MPIError) -> Int32 {
        // MPI guarantees tags up to 32767; OpenMPI allows up to INT_MAX.
        guard let value = Int32(exactly: tag), value >= 0 else {
            throw MPIError(call: "\(call)", errorClass: MPI_ERR_TAG, reason: "MPI_ERR_TAG: tag \(tag) is negative or too large")
        }
        return value
    }

    func receivedStatus<T: MPIScalar>(_ status: MPI_Status, _: T.Type) throws(MPIError) -> ReceiveStatus {
        var status = status
        var count: Int32 = 0
        try check(MPI_Get_count(&status, T.mpiDatatype.raw, &count), "MPI_Get_count")
        return ReceiveStatus(source: Int(status.MPI_SOURCE), tag: Int(status.MPI_TAG), count: Int(count))
    }
}
