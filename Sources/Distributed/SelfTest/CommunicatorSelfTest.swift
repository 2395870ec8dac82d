import Foundation

/// A check of the communicator that holds for any number of ranks; `mpitrain selftest` runs
/// them to validate an MPI installation, and the multi-rank tests run them under `mpirun`.
public enum CommunicatorSelfTest: String, CaseIterable, Sendable {
    case types, info, barrier, broadcast, allreduce, reduce, gather, allgather, alltoall, alltoallv
    case zeroLength = "zero-length", large, split, pointToPoint = "point-to-point", nonblocking, traffic
    /// FermatSketch sums over ranks: both sum methods bit-identical, decoding the union.
    case sketch
    /// Meant to fail: the last rank hangs and the others must end the job within the timeout.
    case hungPeer = "hung-peer"
    /// Meant to fail: ranks disagree on alltoallv sizes and every rank must throw.
    case sizeMismatch = "size-mismatch"
    /// Meant to fail: a call after `MPIRuntime.finalize()` must throw.
    case afterFinalize = "after-finalize"

    /// Scenarios that pass on a healthy installation.
    public static var passing: [CommunicatorSelfTest] { allCases.filter { !$0.isExpectedToFail } }

    public var isExpectedToFail: Bool { self == .hungPeer || self == .sizeMismatch || self == .afterFinalize }

    /// Runs the scenario on `comm`; throws `SelfTestFailure` or `MPIError` when a check fails.
    public func run(on comm: Communicator) throws {
        switch self {
        case .types: try checkTypes()
        case .info: try checkInfo(comm)
        case .barrier: for _ in 0..<10 { try comm.barrier() }
        case .broadcast: try checkBroadcast(comm)
        case .allreduce: try checkAllreduce(comm)
        case .reduce: try checkReduce(comm)
        case .gather: try checkGather(comm)
        case .allgather: try checkAllgather(comm)
        case .alltoall: try checkAlltoall(comm)
        case .alltoallv: try checkAlltoallv(comm, count: { s, d in (s + 2 * d + 1) % 4 * 3 })
        case .zeroLength: try checkZeroLength(comm)
        case .large: try checkLarge(comm)
        case .split: try checkSplit(comm)
        case .pointToPoint: try checkPointToPoint(comm)
        case .nonblocking: try checkNonblocking(comm)
        case .traffic: try checkTraffic(comm)
        case .sketch: try checkSketch(comm)
        case .hungPeer: try hang(comm)
        case .sizeMismatch: try mismatchSizes(comm)
        case .afterFinalize:
            try MPIRuntime.finalize()
            _ = try comm.allreduce(1.0, .sum)
        }
    }
}

/// A self-test check that did not hold on one rank.
public struct SelfTestFailure: Error, CustomStringConvertible {
    public let scenario: String
    public let rank: Int
    public let detail: String
    public var description: String { "selftest \(scenario) failed on rank \(rank): \(detail)" }
}

extension CommunicatorSelfTest {
    private func expect(_ condition: Bool, _ comm: Communicator, _ detail: @autoclosure () -> String) throws {
        if !condition { throw SelfTestFailure(scenario: rawValue, rank: comm.rank, detail: detail()) }
    }

    private func checkTypes() throws {
        let sizes: [(String, MPIDatatype, Int)] = [
            ("Float", .float, MemoryLayout<Float>.size), ("Double", .double, MemoryLayout<Double>.size),
            ("Int32", .int32, 4), ("Int64", .int64, 8), ("UInt32", .uint32, 4), ("UInt64", .uint64, 8),
            ("UInt8", .uint8, 1),
        ]
        for (name, type, expected) in sizes {
            let actual = try type.size()
            if actual != expected {
                throw SelfTestFailure(scenario: rawValue, rank: 0,
                                      detail: "MPI_Type_size of \(name) is \(actual), Swift's is \(expected)")
            }
        }
    }

    private func checkInfo(_ comm: Communicator) throws {
        try expect(comm.size >= 1 && (0..<comm.size).contains(comm.rank), comm, "rank \(comm.rank) of \(comm.size)")
        try expect(!(try comm.processorName()).isEmpty, comm, "empty processor name")
        let ranks = try comm.allgather([Int32(comm.rank)])
        try expect(ranks == (0..<comm.size).map { Int32($0) }, comm, "allgather of ranks gave \(ranks)")
    }

    private func checkBroadcast(_ comm: Communicator) throws {
        let root = comm.size - 1
        var values = (0..<1000).map { comm.rank == root ? Double($0) * 0.5 : -1 }
        try comm.broadcast(&values, root: root)
        try expect(values == (0..<1000).map { Double($0) * 0.5 }, comm, "broadcast from rank \(root) differs")
        let message = Array("plan from the coordinator".utf8)
        let received = try comm.broadcast(comm.rank == 0 ? message : [], root: 0)
        try expect(received == message, comm, "variable-length broadcast gave \(received.count) bytes")
    }

    private func checkAllreduce(_ comm: Communicator) throws {
        let n = comm.size, r = comm.rank
        let triangle = n * (n + 1) / 2
        try expect(try comm.allreduce(Float(r + 1), .sum) == Float(triangle), comm, "Float sum")
        try expect(try comm.allreduce(Double(r + 1), .sum) == Double(triangle), comm, "Double sum")
        try expect(try comm.allreduce(Int32(r + 1), .sum) == Int32(triangle), comm, "Int32 sum")
        try expect(try comm.allreduce(Int64(r + 1), .max) == Int64(n), comm, "Int64 max")
        try expect(try comm.allreduce(UInt32(r + 1), .min) == 1, comm, "UInt32 min")
        try expect(try comm.allreduce(UInt64(r + 1), .sum) == UInt64(triangle), comm, "UInt64 sum")
        try expect(try comm.allreduce(UInt8(r + 1), .max) == UInt8(n), comm, "UInt8 max")
        var inPlace = (0..<257).map { Int64($0 * (r + 1)) }
        try comm.allreduce(&inPlace, .sum)
        try expect(inPlace == (0..<257).map { Int64($0 * triangle) }, comm, "in-place Int64 sum")
        let send = (0..<100).map { Double($0 + r) }
        var recv = [Double](repeating: 0, count: 100)
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { d in try comm.allreduce(s, into: d, .min) }
        }
        try expect(recv == (0..<100).map { Double($0) }, comm, "out-of-place Double min")
        // Without blocking, moved on by progress calls while a blocking allreduce runs, as a
        // step sums its MLP gradients during the embedding update.
        var inFlight = (0..<100_000).map { Float($0 % 1000 * (r + 1)) }
        try inFlight.withUnsafeMutableBufferPointer { buffer in
            var sum = try comm.iallreduce(buffer, .sum)
            for _ in 0..<3 {
                sum.progress()
                _ = try comm.allreduce(1.0, .sum)
            }
            try sum.wait()
        }
        try expect(inFlight == (0..<100_000).map { Float($0 % 1000 * triangle) }, comm, "non-blocking in-place Float sum")
    }

    private func checkReduce(_ comm: Communicator) throws {
        let root = comm.size - 1
        let result = try comm.reduce((0..<64).map { Int32($0 + comm.rank) }, .sum, root: root)
        if comm.rank == root {
            let expected = (0..<64).map { Int32($0 * comm.size + comm.size * (comm.size - 1) / 2) }
            try expect(result == expected, comm, "reduce sum on root")
        } else {
            try expect(result == nil, comm, "reduce returned a value off the root")
        }
    }

    private func checkGather(_ comm: Communicator) throws {
        let gathered = try comm.gather([UInt64(comm.rank), UInt64(comm.rank * 10)], root: 0)
        if comm.rank == 0 {
            try expect(gathered == (0..<comm.size).flatMap { [UInt64($0), UInt64($0 * 10)] }, comm, "gather")
        }
        // Rank r sends r elements (rank 0 sends none).
        let parts = try comm.gatherv([Float](repeating: Float(comm.rank), count: comm.rank), root: comm.size - 1)
        if comm.rank == comm.size - 1, let parts {
            for r in 0..<comm.size {
                try expect(Array(parts[r]) == [Float](repeating: Float(r), count: r), comm, "gatherv part of rank \(r)")
            }
        }
    }

    private func checkAllgather(_ comm: Communicator) throws {
        let all = try comm.allgather([Int32(comm.rank * 3)])
        try expect(all == (0..<comm.size).map { Int32($0 * 3) }, comm, "allgather")
        let parts = try comm.allgatherv([Double](repeating: Double(comm.rank), count: (comm.rank * 7) % 5))
        for r in 0..<comm.size {
            try expect(Array(parts[r]) == [Double](repeating: Double(r), count: (r * 7) % 5), comm, "allgatherv part of rank \(r)")
        }
    }

    /// Encodes (source, destination, index) so any misplaced element is caught.
    private static func tag(_ source: Int, _ destination: Int, _ index: Int) -> Int64 {
        Int64(source) << 40 | Int64(destination) << 20 | Int64(index)
    }

    private func checkAlltoall(_ comm: Communicator) throws {
        let k = 5
        let send = (0..<comm.size).flatMap { d in (0..<k).map { Self.tag(comm.rank, d, $0) } }
        let recv = try comm.alltoall(send)
        let expected = (0..<comm.size).flatMap { s in (0..<k).map { Self.tag(s, comm.rank, $0) } }
        try expect(recv == expected, comm, "alltoall")
    }

    /// Uneven alltoallv with `count(source, destination)` elements, then the reverse exchange,
    /// which must give back exactly what was sent.
    private func checkAlltoallv(_ comm: Communicator, count: (Int, Int) -> Int) throws {
        let r = comm.rank, n = comm.size
        let sendCounts = (0..<n).map { count(r, $0) }
        let send = (0..<n).flatMap { d in (0..<count(r, d)).map { Self.tag(r, d, $0) } }
        let received = try comm.alltoallv(send, sendCounts: sendCounts)
        for s in 0..<n {
            try expect(Array(received[s]) == (0..<count(s, r)).map { Self.tag(s, r, $0) }, comm,
                       "alltoallv part from rank \(s)")
        }
        // Reverse with the buffer-pointer form and explicit chunks on both sides.
        var back = [Int64](repeating: -1, count: send.count)
        try received.values.withUnsafeBufferPointer { s in
            try back.withUnsafeMutableBufferPointer { d in
                try comm.alltoallv(s, received.chunks, into: d, Chunks(counts: sendCounts))
            }
        }
        try expect(back == send, comm, "alltoallv round trip")
        // The same reverse without blocking, with a barrier in flight, as a step overlaps work.
        var overlapped = [Int64](repeating: -1, count: send.count)
        try received.values.withUnsafeBufferPointer { s in
            try overlapped.withUnsafeMutableBufferPointer { d in
                let exchange = try comm.ialltoallv(s, received.chunks, into: d, Chunks(counts: sendCounts))
                try comm.barrier()
                try exchange.wait()
            }
        }
        try expect(overlapped == send, comm, "ialltoallv round trip")
    }

    private func checkSketch(_ comm: Communicator) throws {
        let r = comm.rank, n = comm.size
        var local = try FermatSketch(width: 512, seed: 11)
        var expected: [UInt64: Int64] = [:]
        for source in 0..<n {
            for i in 0..<40 { expected[UInt64(source) << 40 | UInt64(i) * 0x9E37_79B9, default: 0] += Int64(i % 5) - 2 }
            expected[0xFFFF_FFFF_FFFF_FFF0, default: 0] += Int64(source + 1)
        }
        expected = expected.filter { $0.value != 0 }
        for i in 0..<40 { local.insert(UInt64(r) << 40 | UInt64(i) * 0x9E37_79B9, count: Int64(i % 5) - 2) }
        local.insert(0xFFFF_FFFF_FFFF_FFF0, count: Int64(r + 1))
        // A request sent by one rank and served by the next cancels in the sum.
        local.insert(0xABCD, count: 1)
        local.insert(0xABCD, count: -1)
        var modular = local, widened = local, reduced = local
        try comm.allreduce(&modular, using: .modular)
        try comm.allreduce(&widened, using: .widened)
        try comm.reduce(&reduced, root: 0)
        try expect(modular == widened, comm, "modular and widened sums differ")
        try expect(r != 0 || reduced == modular, comm, "reduce to the root differs from allreduce")
        let decoded = modular.decode()
        try expect(decoded.complete && decoded.counts == expected, comm,
                   "decoded \(decoded.counts.count) keys (complete: \(decoded.complete)), expected \(expected.count)")
        guard n > 1 else { return }
        var odd = try FermatSketch(width: r == n - 1 ? 256 : 512, seed: 11)
        do {
            try comm.allreduce(&odd)
            try expect(false, comm, "sketches of different widths were summed")
        } catch let error as SketchError {
            try expect(error.description.contains("rank \(n - 1) holds a sketch of 3×256"), comm, "\(error)")
        }
    }

    private func checkZeroLength(_ comm: Communicator) throws {
        try checkAlltoallv(comm, count: { _, _ in 0 })
        try checkAlltoallv(comm, count: { s, d in s == d ? 0 : s + d })
        try expect(try comm.allreduce([Float](), .sum).isEmpty, comm, "empty allreduce")
        try expect(try comm.allgatherv([UInt8]()).values.isEmpty, comm, "empty allgatherv")
        var empty = [Int32]()
        try comm.broadcast(&empty, root: 0)
    }

    private func checkLarge(_ comm: Communicator) throws {
        let mebibytes16 = 16 << 20
        let floats = mebibytes16 / 4
        var big = [Float](repeating: Float(comm.rank + 1), count: floats)
        try comm.allreduce(&big, .sum)
        let triangle = Float(comm.size * (comm.size + 1) / 2)
        try expect(big.allSatisfy { $0 == triangle }, comm, "16 MiB allreduce")
        var bytes = [UInt8](repeating: comm.rank == 0 ? 7 : 0, count: mebibytes16)
        try comm.broadcast(&bytes, root: 0)
        try expect(bytes.allSatisfy { $0 == 7 }, comm, "16 MiB broadcast")
        // 16 MiB leaves every rank in one alltoallv.
        let perPeer = floats / comm.size
        let send = (0..<comm.size).flatMap { d in [Float](repeating: Float(comm.rank * 100 + d), count: perPeer) }
        let received = try comm.alltoallv(send, sendCounts: Array(repeating: perPeer, count: comm.size))
        for s in 0..<comm.size {
            try expect(received[s].allSatisfy { $0 == Float(s * 100 + comm.rank) }, comm, "16 MiB alltoallv part from \(s)")
        }
    }

    private func checkSplit(_ comm: Communicator) throws {
        guard let half = try comm.split(color: comm.rank % 2, key: -comm.rank) else {
            throw SelfTestFailure(scenario: rawValue, rank: comm.rank, detail: "split returned no communicator")
        }
        let members = (0..<comm.size).filter { $0 % 2 == comm.rank % 2 }
        try expect(half.size == members.count, comm, "sub-communicator size \(half.size)")
        // Key -rank reverses the order.
        try expect(half.rank == members.count - 1 - members.firstIndex(of: comm.rank)!, comm, "sub rank \(half.rank)")
        let sum = try half.allreduce(Int64(comm.rank), .sum)
        try expect(sum == Int64(members.reduce(0, +)), comm, "allreduce on the sub-communicator")
        let none = try comm.split(color: comm.rank == 0 ? nil : 1)
        try expect((none == nil) == (comm.rank == 0), comm, "opting out of a split")
        if let none { try expect(none.size == comm.size - 1, comm, "size after opting out") }
    }

    private func checkPointToPoint(_ comm: Communicator) throws {
        let n = comm.size, r = comm.rank
        let next = (r + 1) % n, previous = (r + n - 1) % n
        let outgoing = (0..<33).map { Double(r * 1000 + $0) }
        var incoming = [Double](repeating: 0, count: 33)
        try outgoing.withUnsafeBufferPointer { s in
            try incoming.withUnsafeMutableBufferPointer { d in
                let status = try comm.sendReceive(s, to: next, sendTag: 5, into: d, from: previous, receiveTag: 5)
                try expect(status.source == previous && status.count == 33, comm, "sendReceive status \(status)")
            }
        }
        try expect(incoming == (0..<33).map { Double(previous * 1000 + $0) }, comm, "sendReceive ring")
        guard n > 1 else { return }
        // Rank 0 collects a message of a different length from every other rank, any source.
        if r == 0 {
            var seen = Set<Int>()
            for _ in 1..<n {
                let (values, status) = try comm.receive(Int32.self, from: Communicator.anySource, tag: 9)
                try expect(values == (0..<status.source).map { Int32($0) }, comm, "probed receive from \(status.source)")
                seen.insert(status.source)
            }
            try expect(seen == Set(1..<n), comm, "sources \(seen)")
        } else {
            try comm.send((0..<r).map { Int32($0) }, to: 0, tag: 9)
        }
    }

    private func checkNonblocking(_ comm: Communicator) throws {
        let n = comm.size, r = comm.rank
        let count = 4096
        let outgoing = [UInt32](repeating: UInt32(r), count: count)
        var fromNext = [UInt32](repeating: .max, count: count)
        var fromPrevious = [UInt32](repeating: .max, count: count)
        try outgoing.withUnsafeBufferPointer { out in
            try fromNext.withUnsafeMutableBufferPointer { a in
                try fromPrevious.withUnsafeMutableBufferPointer { b in
                    var group = RequestGroup()
                    group.append(try comm.irecv(into: a, from: (r + 1) % n, tag: 1))
                    group.append(try comm.irecv(into: b, from: (r + n - 1) % n, tag: 2))
                    group.append(try comm.isend(out, to: (r + n - 1) % n, tag: 1))
                    group.append(try comm.isend(out, to: (r + 1) % n, tag: 2))
                    try group.waitAll()
                }
            }
        }
        try expect(fromNext.allSatisfy { $0 == UInt32((r + 1) % n) }, comm, "irecv from next")
        try expect(fromPrevious.allSatisfy { $0 == UInt32((r + n - 1) % n) }, comm, "irecv from previous")
        // A single request: test until done, then wait returns the status.
        var value = [Int64(-1)]
        let mine = [Int64(r)]
        try mine.withUnsafeBufferPointer { out in
            try value.withUnsafeMutableBufferPointer { into in
                var receive = try comm.irecv(into: into, from: (r + n - 1) % n, tag: 3)
                let send = try comm.isend(out, to: (r + 1) % n, tag: 3)
                while !(try receive.test()) {}
                let status = try receive.wait()
                try expect(status.count == 1 && status.source == (r + n - 1) % n, comm, "test/wait status \(status)")
                try send.wait()
            }
        }
        try expect(value == [Int64((r + n - 1) % n)], comm, "single irecv")
    }

    private func checkTraffic(_ comm: Communicator) throws {
        let n = comm.size, r = comm.rank
        guard let sub = try comm.split(color: 0, key: r) else { return }
        // Known traffic on a fresh communicator: one allreduce of 10 Doubles, one alltoallv
        // sending r+1 Int32 to every other rank.
        _ = try sub.allreduce([Double](repeating: 1, count: 10), .sum)
        let counts = (0..<n).map { _ in r + 1 }
        _ = try sub.alltoallv([Int32](repeating: 0, count: counts.reduce(0, +)), sendCounts: counts)
        let mine = sub.traffic()
        let others = n - 1
        try expect(mine[.allreduce] == TrafficCounters(calls: 1, bytesSent: others > 0 ? 80 : 0, bytesReceived: others > 0 ? 80 : 0),
                   comm, "allreduce counters \(mine[.allreduce])")
        let receivedInts = (0..<n).filter { $0 != r }.map { $0 + 1 }.reduce(0, +)
        try expect(mine[.alltoallv] == TrafficCounters(calls: 1, bytesSent: UInt64(4 * (r + 1) * others), bytesReceived: UInt64(4 * receivedInts)),
                   comm, "alltoallv counters \(mine[.alltoallv])")
        try expect(mine[.alltoall].calls == 1, comm, "the counts exchange is one alltoall")
        let perRank = try sub.gatherTraffic(root: 0)
        let total = try sub.reduceTraffic(root: 0)
        if r == 0, let perRank, let total {
            try expect(perRank.count == n, comm, "gathered \(perRank.count) reports")
            try expect(perRank[0] == mine, comm, "root's own report")
            // Every byte sent is received somewhere.
            let sent = perRank.reduce(TrafficReport(), +)[.alltoallv]
            try expect(sent.bytesSent == sent.bytesReceived, comm, "alltoallv sent \(sent.bytesSent) received \(sent.bytesReceived)")
            try expect(total[.alltoallv] == sent, comm, "reduced traffic")
        }
    }

    /// The last rank shuts MPI down and leaves; the others wait in an allreduce it never joins.
    /// The last rank stops answering (as a rank stuck in a loop or a dead node would) while the
    /// others wait in an allreduce; their watchdogs must end the job.
    private func hang(_ comm: Communicator) throws {
        if comm.size == 1 {
            throw SelfTestFailure(scenario: rawValue, rank: 0, detail: "needs at least 2 ranks")
        }
        if comm.rank == comm.size - 1 {
            Thread.sleep(forTimeInterval: 600)
        }
        _ = try comm.allreduce(Int64(comm.rank), .sum)
    }

    /// Rank 0 sends one element more to rank 1 (to itself when alone) than it expects.
    private func mismatchSizes(_ comm: Communicator) throws {
        var checked = comm
        checked.verifiesMessageSizes = true
        let n = comm.size
        var sendCounts = [Int](repeating: 2, count: n)
        if comm.rank == 0 { sendCounts[min(1, n - 1)] += 1 }
        let send = [Float](repeating: 1, count: sendCounts.reduce(0, +))
        var recv = [Float](repeating: 0, count: 2 * n)
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { d in
                try checked.alltoallv(s, Chunks(counts: sendCounts), into: d, Chunks(counts: Array(repeating: 2, count: n)))
            }
        }
    }
}
