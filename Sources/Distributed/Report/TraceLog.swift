import Foundation
import Models

/// The timed phases of a `--trace` file: Chrome's JSON array format as written event by event
/// (possibly cut short by a crash: no closing bracket, a trailing comma, a partial last line),
/// or the object format `{"traceEvents": [...]}`. A phase's rank is its process when the trace
/// names processes (one per rank), else its thread (one per rank in one process).
public struct TraceLog: Sendable {
    public struct Phase: Sendable {
        public var rank: Int
        public var name: String
        /// What it spends its time on ("compute", "communication", "wait", "update"), when the trace says.
        public var category: String?
        /// Microseconds from the trace's origin.
        public var start: Double
        public var duration: Double
        /// The step or epoch it belongs to, and a pipelined GNN's layer and chunk, when the trace says.
        public var step: Int?
        public var layer: Int?
        public var chunk: Int?
    }

    /// Complete phases (`"ph": "X"`) with a name, a rank and finite times, in file order.
    public var phases: [Phase] = []
    /// The trace's name of each rank ("rank 0 on host").
    public var rankNames: [Int: String] = [:]
    /// What `Phase.step` counts, "step" or "epoch", when phases carry it.
    public var stepName: String?

    public init(path: String) throws(ConfigError) {
        let data = try MetricsLog.contents(of: path, "trace")
        let events: [Event]
        if data.first(where: { !Self.isSpace($0) }) != UInt8(ascii: "[") {
            events = try Self.decode(TraceObject.self, data, path: path).traceEvents ?? []
        } else {
            do { events = try Self.decode([Event].self, Self.closed(data), path: path) } catch {
                // An unclosed array is a trace cut short, whose last line may be a partial event.
                guard data.last(where: { !Self.isSpace($0) }) != UInt8(ascii: "]"),
                      let cut = data.dropLast().lastIndex(of: UInt8(ascii: "\n")) else { throw error }
                events = try Self.decode([Event].self, Self.closed(data[..<cut]), path: path)
            }
        }
        let namedProcesses = events.contains { $0.ph == "M" && $0.name == "process_name" }
        for event in events {
            guard let rank = namedProcesses ? event.pid : event.tid else { continue }
            if event.ph == "M", event.name == (namedProcesses ? "process_name" : "thread_name"), let name = event.args?.name {
                rankNames[rank] = name
            }
            guard event.ph == "X", let name = event.name, let start = event.ts, let duration = event.dur,
                  start.isFinite, duration.isFinite, duration >= 0 else { continue }
            phases.append(Phase(rank: rank, name: name, category: event.cat, start: start, duration: duration,
                                step: event.args?.step ?? event.args?.epoch, layer: event.args?.layer, chunk: event.args?.chunk))
            if stepName == nil, event.args?.step != nil || event.args?.epoch != nil { stepName = event.args?.step != nil ? "step" : "epoch" }
        }
    }

    /// A typical stretch of `count` consecutive steps (or epochs), as a time window and its
    /// description: of the stretches whose length is within 10% of the median's, the one nearest
    /// the middle of the run, so that neither the warm-up nor an evaluation fills it. Steps are
    /// the phases' own when they carry them, else the periods between starts of the lowest
    /// rank's least frequent recurring phase (once per step in a training loop); the whole trace
    /// when there is neither.
    public func typicalWindow(_ count: Int) -> (start: Double, end: Double, description: String) {
        var windows: [(start: Double, end: Double, description: String)] = []
        let ends = phases.map { $0.start + $0.duration }
        if let stepName {
            var bounds: [Int: (start: Double, end: Double)] = [:]
            for (phase, end) in zip(phases, ends) {
                guard let step = phase.step else { continue }
                bounds[step] = bounds[step].map { (min($0.start, phase.start), max($0.end, end)) } ?? (phase.start, end)
            }
            let steps = bounds.keys.sorted()
            windows = (0...max(0, steps.count - count)).map { i in
                let chosen = steps[i..<min(steps.count, i + count)]
                return (bounds[chosen.first!]!.start, chosen.map { bounds[$0]!.end }.max()!,
                        chosen.count == 1 ? "\(stepName) \(chosen.first!)" : "\(stepName)s \(chosen.first!)–\(chosen.last!)")
            }
        } else if let rank = phases.map(\.rank).min() {
            var starts: [String: [Double]] = [:]
            for phase in phases where phase.rank == rank { starts[phase.name, default: []].append(phase.start) }
            if let marker = starts.filter({ $0.value.count > count })
                .min(by: { ($0.value.count, $0.value.min()!, $0.key) < ($1.value.count, $1.value.min()!, $1.key) }) {
                let times = marker.value.sorted()
                windows = (0..<(times.count - count)).map { (times[$0], times[$0 + count], "\(count) cycles of rank \(rank)'s '\(marker.key)'") }
            }
        }
        guard !windows.isEmpty else { return (phases.map(\.start).min() ?? 0, ends.max() ?? 0, "the whole trace") }
        let lengths = windows.map { $0.end - $0.start }, median = lengths.sorted()[lengths.count / 2], middle = windows.count / 2
        return windows[windows.indices.filter { abs(lengths[$0] - median) <= 0.1 * median }.min { abs($0 - middle) < abs($1 - middle) }!]
    }

    private static func isSpace(_ byte: UInt8) -> Bool { [0x20, 0x09, 0x0a, 0x0d].contains(byte) }

    /// An array written event by event, closed: without trailing space and comma, with its `]`.
    private static func closed(_ data: Data) -> Data {
        var body = data
        while let last = body.last, isSpace(last) || last == UInt8(ascii: ",") { body.removeLast() }
        if body.last != UInt8(ascii: "]") { body.append(UInt8(ascii: "]")) }
        return body
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ data: Data, path: String) throws(ConfigError) -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            do { _ = try JSONSerialization.jsonObject(with: data) } catch { throw MetricsLog.notJSON(error, in: data, path: path, firstLine: 1) }
            throw ConfigError("\(path): not a trace (\(JSONProblem.describe(error)); expected an array of events or {\"traceEvents\": [...]})")
        }
    }
}

/// `{"traceEvents": [...]}`, the object format.
private struct TraceObject: Decodable {
    var traceEvents: [Event]?
}

/// One trace event, as far as a report reads it; fields of other types count as absent.
private struct Event: Decodable {
    struct Arguments: Decodable {
        var step: Int?
        var epoch: Int?
        var layer: Int?
        var chunk: Int?
        var name: String?

        private enum Key: String, CodingKey { case step, epoch, layer, chunk, name }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            (step, epoch, layer, chunk, name) = (c.lenient(.step), c.lenient(.epoch), c.lenient(.layer), c.lenient(.chunk), c.lenient(.name))
        }
    }

    var name: String?
    var cat: String?
    var ph: String?
    var pid: Int?
    var tid: Int?
    var ts: Double?
    var dur: Double?
    var args: Arguments?

    private enum Key: String, CodingKey { case name, cat, ph, pid, tid, ts, dur, args }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        (name, cat, ph, pid, tid) = (c.lenient(.name), c.lenient(.cat), c.lenient(.ph), c.lenient(.pid), c.lenient(.tid))
        (ts, dur, args) = (c.lenient(.ts), c.lenient(.dur), c.lenient(.args))
    }
}
