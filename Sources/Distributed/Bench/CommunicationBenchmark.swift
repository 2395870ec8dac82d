import MPIShim
import Models

/// OSU-style latency and bandwidth of the collectives DLRM and GNN training use, measured through
/// the typed communicator on caller memory (no copies, no allocation inside the timed loop).
public struct CommunicationBenchmark: Sendable {
    /// One operation the benchmark times.
    public enum Operation: String, CaseIterable, Codable, Sendable {
        /// `size` bytes reduced in place on every rank.
        case allreduce
        /// `size` bytes sent by every rank in total, split evenly over all ranks.
        case alltoall
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
                for _ in 0..<warmupIterations { try step() }
                try comm.barrier()
                let start = ContinuousClock.now
                for _ in 0..<iterations { try step() }
                let elapsed = ContinuousClock.now - start
                var mean = (elapsed).seconds * 1e6 / Double(iterations)
                if operation == .pingPong { mean /= 2 }
                // Ping-pong involves ranks 0 and 1 only; the others must not count as fast.
                let takesPart = operation != .pingPong || comm.rank < 2
                let total = try comm.allreduce([takesPart ? mean : 0, takesPart ? 1 : 0], .sum)
                let average = total[0] / total[1]
                let row = Row(operation: operation, bytes: bytes, iterations: iterations, averageMicroseconds: average,
                              minMicroseconds: try comm.allreduce(takesPart ? mean : .infinity, .min),
                              maxMicroseconds: try comm.allreduce(takesPart ? mean : -.infinity, .max),
                              bandwidthMBps: Double(bytes) / average)
                rows.append(row)
                if comm.isRoot { progress(row) }
            }
        }
        return rows
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
