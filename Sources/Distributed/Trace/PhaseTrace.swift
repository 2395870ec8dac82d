import Foundation
import Models

/// Timed phases of one rank (forward of a chunk, a halo exchange, a wait, ...), gathered to
/// rank 0 and written as a Chrome/Perfetto trace: one track per rank.
public final class PhaseTrace {
    private var names: [String] = []
    private var starts: [Double] = []
    private var durations: [Double] = []
    private let origin = ContinuousClock.now
    public let isEnabled: Bool

    public init(enabled: Bool) { isEnabled = enabled }

    /// Runs `body` and records it as phase `name` when tracing.
    @inline(__always)
    public func phase<R>(_ name: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard isEnabled else { return try body() }
        let start = ContinuousClock.now
        let result = try body()
        record(name(), since: start)
        return result
    }

    /// Records phase `name` from `start` to now, for work that cannot sit in a closure.
    public func record(_ name: @autoclosure () -> String, since start: ContinuousClock.Instant) {
        guard isEnabled else { return }
        let end = ContinuousClock.now
        names.append(name())
        starts.append((start - origin).seconds * 1e6)
        durations.append((end - start).seconds * 1e6)
    }

    /// Gathers every rank's phases to rank 0 and writes the trace file there.
    public func write(to path: String, comm: Communicator, process: String) throws {
        // Align clocks: every rank's origin is shifted to rank 0's after a barrier.
        try comm.barrier()
        let offset = (ContinuousClock.now - origin).seconds * 1e6
        let shift = try comm.broadcast([offset], root: 0)[0] - offset
        let text = Array(names.joined(separator: "\n").utf8)
        let gatheredNames = try comm.gatherv(text, root: 0)
        let gatheredTimes = try comm.gatherv(zip(starts, durations).flatMap { [$0 + shift, $1] }, root: 0)
        guard let gatheredNames, let gatheredTimes else { return }
        var events: [[String: Any]] = []
        for rank in 0..<comm.size {
            let rankNames = String(decoding: gatheredNames[rank], as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            let times = Array(gatheredTimes[rank])
            events.append(["name": "thread_name", "ph": "M", "pid": 0, "tid": rank, "args": ["name": "rank \(rank)"]])
            for (i, name) in rankNames.enumerated() where 2 * i + 1 < times.count && !name.isEmpty {
                events.append(["name": String(name), "ph": "X", "pid": 0, "tid": rank, "ts": times[2 * i], "dur": times[2 * i + 1]])
            }
        }
        let document: [String: Any] = ["traceEvents": events, "displayTimeUnit": "ms", "otherData": ["process": process]]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
        try JSONFile.writeAtomically(data, to: path)
    }
}
