import MPIShim
import Models

/// OSU-style latency and bandwidth of the collectives DLRM and GNN training use, measured through
/// the typed communicator on caller memory (no copies, no allocation inside the timed loop):
/// each call timed alone, with a barrier after it outside the timed region, warm-up calls not
/// counted. With `reference`, the same calls are also made on plain MPI from C
/// (`MPIReference.h`) and timed the same way, in alternating blocks, so the ratio per size is
/// what the communicator costs.
public struct CommunicationBenchmark: Sendable {
    /// One operation the benchmark times.
    public enum Operation: String, CaseIterable, Codable, Sendable {
        /// `size` bytes reduced in place on every rank.
        case allreduce
        /// `size` bytes sent by every rank in total, split evenly over all ranks.
        case alltoall
        /// The same through `MPI_Alltoallv`, with counts and displacements, as embedding
        /// exchanges send.
        case alltoallv
        /// `size` bytes from rank 0 to every rank.
        case broadcast
        /// `size` bytes from rank 0 to rank 1 and back; latency is half the round trip.
        case pingPong = "ping-pong"
    }

    /// Latency across ranks (each rank's mean over the timed iterations) and bandwidth at one size.
    public struct Row: Codable, Sendable {
        public let operation: Operation
        public let bytes: Int
        public let iterations: Int
        public let averageMicroseconds: Double
        public let minMicroseconds: Double
        public let maxMicroseconds: Double
        /// Payload bytes per second at the average latency, in MB/s (10^6 bytes).
        public let bandwidthMBps: Double
        /// The average latency of the same calls on plain MPI from C (nil: not measured).
        public var referenceMicroseconds: Double?

        /// The communicator's latency over plain MPI's.
        public var referenceRatio: Double? { referenceMicroseconds.map { averageMicroseconds / $0 } }
    }

    /// The cost of the Swift layer: the same 8-byte allreduce through `Communicator` and through
    /// `MPI_Allreduce` directly, interleaved, medians of many batches.
    public struct Overhead: Codable, Sendable {
        public let rawMicroseconds: Double
        public let wrappedMicroseconds: Double
    }

    public var operations: [Operation] = Operation.allCases
    public var minBytes = 8
    public var maxBytes = 64 << 20
    public var warmupIterations = 10
    /// Also time every call on plain MPI from C.
    public var reference = false
    /// Timed iterations at `bytes`; the default keeps every size near the same total volume.
    public var iterations: @Sendable (Int) -> Int = { bytes in max(5, min(1000, (256 << 20) / max(bytes, 1))) }

    public init() {}

    /// Message sizes from `minBytes` to `maxBytes` by powers of two.
    public var sizes: [Int] {
        var sizes: [Int] = []
        var bytes = max(1, minBytes)
        while bytes <= maxBytes {
            sizes.append(bytes)
            bytes *= 2
        }
        return sizes
    }

    /// Runs every operation at every size; the rows are complete on rank 0 (others get their own
    /// view). Ping-pong needs two ranks and is skipped on one.
    public func run(on comm: Communicator, progress: (Row) -> Void = { _ in }) throws(MPIError) -> [Row] {
        var rows: [Row] = []
        let largest = maxBytes
        // One pair of buffers for everything: allocation stays out of the timed loops.
        let send = UnsafeMutableRawBufferPointer.allocate(byteCount: largest, alignment: 64)
        let recv = UnsafeMutableRawBufferPointer.allocate(byteCount: largest, alignment: 64)
        defer { send.deallocate(); recv.deallocate() }
        send.initializeMemory(as: UInt8.self, repeating: 1)
        recv.initializeMemory(as: UInt8.self, repeating: 0)
        for operation in operations {
            if operation == .pingPong && comm.size < 2 { continue }
            for bytes in sizes {
                let iterations = self.iterations(bytes)
                let step = try Self.step(operation, bytes: bytes, comm: comm, send: send, recv: recv)
                // Ping-pong involves ranks 0 and 1 only; the others must not count as fast.
                let takesPart = operation != .pingPong || comm.rank < 2
                /// Mean microseconds of one call on this rank, over the ranks that take part.
                func perCall(_ seconds: Double) throws(MPIError) -> (mine: Double, average: Double) {
                    let mine = seconds * 1e6 / Double(iterations) / (operation == .pingPong ? 2 : 1)
                    let total = try comm.allreduce([takesPart ? mine : 0, takesPart ? 1 : 0], .sum)
                    return (mine, total[0] / total[1])
                }
                var swift = 0.0, plain = 0.0
                if reference {
                    // Blocks of half the calls in the order C, Swift, Swift, C: drift in time
                    // falls on both alike.
                    let half = max(1, iterations / 2)
                    for block in 0..<4 {
                        if block == 1 || block == 2 {
                            swift += try Self.time(step, warmup: warmupIterations, iterations: half, comm: comm)
                        } else {
                            plain += try Self.timeReference(operation, bytes: bytes, comm: comm, send: send, recv: recv,
                                                            warmup: warmupIterations, iterations: half)
                        }
                    }
                    (swift, plain) = (swift * Double(iterations) / Double(2 * half), plain * Double(iterations) / Double(2 * half))
                } else {
                    swift = try Self.time(step, warmup: warmupIterations, iterations: iterations, comm: comm)
                }
                let (mine, average) = try perCall(swift)
                var row = Row(operation: operation, bytes: bytes, iterations: iterations, averageMicroseconds: average,
                              minMicroseconds: try comm.allreduce(takesPart ? mine : .infinity, .min),
                              maxMicroseconds: try comm.allreduce(takesPart ? mine : -.infinity, .max),
                              bandwidthMBps: Double(bytes) / average)
                if reference { row.referenceMicroseconds = try perCall(plain).average }
                rows.append(row)
                if comm.isRoot { progress(row) }
            }
        }
        return rows
    }

    /// Seconds spent in `iterations` calls of `step`, each timed alone with a barrier after it
    /// outside the timed region, after `warmup` untimed calls: `MPIReference_time`'s method.
    private static func time(_ step: () throws(MPIError) -> Void, warmup: Int, iterations: Int,
                             comm: Communicator) throws(MPIError) -> Double {
        var total = 0.0
        for i in 0..<(warmup + iterations) {
            let start = MPIReference_seconds()
            try step()
            let elapsed = MPIReference_seconds() - start
            try comm.barrier()
            if i >= warmup { total += elapsed }
        }
        return total
    }

    /// The same calls on plain MPI from C: seconds spent in `iterations` of them.
    private static func timeReference(_ operation: Operation, bytes: Int, comm: Communicator, send: UnsafeMutableRawBufferPointer,
                                      recv: UnsafeMutableRawBufferPointer, warmup: Int, iterations: Int) throws(MPIError) -> Double {
        let code = switch operation {
        case .allreduce: MPIReference_ALLREDUCE
        case .alltoall: MPIReference_ALLTOALL
        case .alltoallv: MPIReference_ALLTOALLV
        case .broadcast: MPIReference_BROADCAST
        case .pingPong: MPIReference_PING_PONG
        }
        let chunks = Self.equalChunks(bytes: bytes, ranks: comm.size)
        let seconds = withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * comm.size) { arrays in
            chunks.write(into: arrays.baseAddress!, size: comm.size)
            return MPIReference_time(Int32(code), send.baseAddress, recv.baseAddress, Int32(bytes), arrays.baseAddress,
                                     arrays.baseAddress! + comm.size, Int32(warmup), Int32(iterations), comm.raw)
        }
        guard seconds >= 0 else {
            throw MPIError(call: "MPIReference_time", errorClass: MPI_ERR_OTHER, reason: "a plain MPI call of the reference failed")
        }
        return seconds
    }

    /// `bytes` split evenly over `ranks`, as the alltoall(v) rows send them.
    static func equalChunks(bytes: Int, ranks: Int) -> Chunks {
        Chunks(counts: [Int](repeating: max(1, bytes / ranks), count: ranks))
    }

    /// One timed iteration of `operation` on the shared buffers.
    private static func step(
        _ operation: Operation, bytes: Int, comm: Communicator,
        send: UnsafeMutableRawBufferPointer, recv: UnsafeMutableRawBufferPointer
    ) throws(MPIError) -> () throws(MPIError) -> Void {
        let floats = max(1, bytes / 4)
        switch operation {
        case .allreduce:
            let buffer = UnsafeMutableBufferPointer(start: recv.baseAddress!.assumingMemoryBound(to: Float.self), count: floats)
            return { () throws(MPIError) in try comm.allreduce(buffer, .sum) }
        case .alltoall:
            let perRank = max(1, bytes / comm.size)
            let s = UnsafeBufferPointer(start: send.baseAddress!.assumingMemoryBound(to: UInt8.self), count: perRank * comm.size)
            let r = UnsafeMutableBufferPointer(start: recv.baseAddress!.assumingMemoryBound(to: UInt8.self), count: perRank * comm.size)
            return { () throws(MPIError) in try comm.alltoall(s, into: r) }
        case .alltoallv:
            let chunks = Self.equalChunks(bytes: bytes, ranks: comm.size)
            let s = UnsafeBufferPointer(start: send.baseAddress!.assumingMemoryBound(to: UInt8.self), count: chunks.extent)
            let r = UnsafeMutableBufferPointer(start: recv.baseAddress!.assumingMemoryBound(to: UInt8.self), count: chunks.extent)
            return { () throws(MPIError) in try comm.alltoallv(s, chunks, into: r, chunks) }
        case .broadcast:
            let buffer = UnsafeMutableBufferPointer(start: recv.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes)
            return { () throws(MPIError) in try comm.broadcast(buffer, root: 0) }
        case .pingPong:
            let s = UnsafeBufferPointer(start: send.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes)
            let r = UnsafeMutableBufferPointer(start: recv.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes)
            switch comm.rank {
            case 0:
                return { () throws(MPIError) in
                    try comm.send(s, to: 1, tag: 1)
                    try comm.receive(into: r, from: 1, tag: 1)
                }
            case 1:
                return { () throws(MPIError) in
                    try comm.receive(into: r, from: 0, tag: 1)
                    try comm.send(s, to: 0, tag: 1)
                }
            default:
                return { () throws(MPIError) in }
            }
        }
    }

    /// Times an 8-byte allreduce through the communicator and through MPI directly, alternating
    /// batches so drift hits both alike; medians over `batches` batches of `perBatch` calls.
    public func measureOverhead(on comm: Communicator, batches: Int = 21, perBatch: Int = 500) throws(MPIError) -> Overhead {
        var value: [Double] = [1]
        var raw: [Double] = []
        var wrapped: [Double] = []
        try value.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in
            for _ in 0..<batches {
                try comm.barrier()
                var start = ContinuousClock.now
                for _ in 0..<perBatch {
                    try check(MPI_Allreduce(MPIShim_IN_PLACE(), buffer.baseAddress, 1, MPIShim_DOUBLE(), MPIShim_SUM(), comm.raw),
                              "MPI_Allreduce")
                }
                raw.append((ContinuousClock.now - start).seconds * 1e6 / Double(perBatch))
                try comm.barrier()
                start = ContinuousClock.now
                for _ in 0..<perBatch { try comm.allreduce(buffer, .sum) }
                wrapped.append((ContinuousClock.now - start).seconds * 1e6 / Double(perBatch))
            }
        }
        return Overhead(rawMicroseconds: try comm.allreduce(median(raw), .max),
                        wrappedMicroseconds: try comm.allreduce(median(wrapped), .max))
    }
}
