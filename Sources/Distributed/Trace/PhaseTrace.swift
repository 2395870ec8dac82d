import Foundation
import Models

/// Timed phases of one rank (forward of a chunk, a halo exchange, a wait, ...), written as a
/// Chrome/Perfetto trace (JSON array format) that loads with one process per rank, "rank N on
/// HOST", each phase with its category and its step (or epoch, layer and chunk) in `args`.
///
/// The file is written as the run goes: `start` writes the header, every `flush` gathers the
/// phases recorded since the last one to rank 0, which appends them, and `finish` closes the
/// array. A run that dies between flushes leaves a trace without its closing bracket, which the
/// format allows and the viewers load.
public final class PhaseTrace {
    /// What a phase spends its time on; the viewers colour and filter by it.
    public enum Category: String, Sendable {
        case compute, communication, wait, update
    }

    private struct Event {
        let name: String
        let category: Category
        let start: Double
        let duration: Double
        let step: Int
        let layer: Int
        let chunk: Int
    }

    public let isEnabled: Bool
    /// The step (DLRM) or epoch (GNN) the phases recorded from now on belong to.
    public var step = 0
    private var events: [Event] = []
    private let origin = ContinuousClock.now
    /// Microseconds that move this rank's clock onto rank 0's (set by `start`).
    private var shift = 0.0
    /// The trace file, open on rank 0 between `start` and `finish`.
    private var file: FileHandle?
    private var started = false
    /// What `step` counts, as `args` names it.
    private var stepName = "step"

    public init(enabled: Bool) { isEnabled = enabled }

    /// Runs `body` and records it as phase `name` when tracing; `layer` and `chunk` place a
    /// pipelined GNN's phase (-1: none).
    @inline(__always)
    public func phase<R>(_ name: StaticString, _ category: Category, layer: Int = -1, chunk: Int = -1,
                         _ body: () throws -> R) rethrows -> R {
        guard isEnabled else { return try body() }
        let start = ContinuousClock.now
        let result = try body()
        record(name, category, since: start, layer: layer, chunk: chunk)
        return result
    }

    /// Records phase `name` from `start` to now, for work that cannot sit in a closure.
    public func record(_ name: StaticString, _ category: Category, since start: ContinuousClock.Instant, layer: Int = -1, chunk: Int = -1) {
        guard isEnabled else { return }
        let end = ContinuousClock.now
        events.append(Event(name: "\(name)", category: category, start: (start - origin).seconds * 1e6,
                            duration: (end - start).seconds * 1e6, step: step, layer: layer, chunk: chunk))
    }

    /// Opens the trace at `path` on rank 0, labelled `title`, and names every rank's process
    /// after its host; a collective call of every rank of `comm`. `stepName` is what `step`
    /// counts ("step", "epoch").
    public func start(writingTo path: String, comm: Communicator, title: String, stepName: String = "step") throws {
        guard isEnabled else { return }
        self.stepName = stepName
        // Align clocks: every rank's origin is shifted to rank 0's after a barrier.
        try comm.barrier()
        let offset = (ContinuousClock.now - origin).seconds * 1e6
        shift = try comm.broadcast([offset], root: 0)[0] - offset
        let host = Array(try comm.processorName().utf8)
        let hosts = try comm.gatherv(host, root: 0)
        started = true
        guard let hosts else { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw ConfigError("\(path): cannot create the trace (\(String(cString: strerror(errno))))") }
        file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var header = "[\n" + Self.metadata("process_labels", pid: 0, args: "\"labels\":\(Self.quoted(title))")
        for rank in 0..<comm.size {
            let name = "rank \(rank) on \(String(decoding: hosts[rank], as: UTF8.self))"
            header += ",\n" + Self.metadata("process_name", pid: rank, args: "\"name\":\(Self.quoted(name))")
            header += ",\n" + Self.metadata("process_sort_index", pid: rank, args: "\"sort_index\":\(rank)")
        }
        try file?.write(contentsOf: Data(header.utf8))
    }

    /// Gathers the phases recorded since the last flush to rank 0, which appends them to the
    /// file; a collective call of every rank of `comm`, at the same step on each.
    public func flush(comm: Communicator) throws {
        guard isEnabled && started else { return }
        var text = ""
        for event in events {
            text += ",\n{\"name\":\(Self.quoted(event.name)),\"cat\":\"\(event.category.rawValue)\",\"ph\":\"X\",\"pid\":\(comm.rank),\"tid\":0,"
                + String(format: "\"ts\":%.3f,\"dur\":%.3f,", event.start + shift, event.duration)
                + "\"args\":{\"\(stepName)\":\(event.step)"
                + (event.layer >= 0 ? ",\"layer\":\(event.layer)" : "") + (event.chunk >= 0 ? ",\"chunk\":\(event.chunk)" : "") + "}}"
        }
        events.removeAll(keepingCapacity: true)
        guard let gathered = try comm.gatherv(Array(text.utf8), root: 0) else { return }
        for rank in 0..<comm.size where !gathered[rank].isEmpty {
            try file?.write(contentsOf: Data(gathered[rank]))
        }
    }

    /// Writes what is left and closes the array; a collective call of every rank of `comm`.
    public func finish(comm: Communicator) throws {
        guard isEnabled && started else { return }
        try flush(comm: comm)
        try file?.write(contentsOf: Data("\n]\n".utf8))
        try file?.close()
        file = nil
        started = false
    }

    private static func metadata(_ name: String, pid: Int, args: String) -> String {
        "{\"name\":\"\(name)\",\"ph\":\"M\",\"pid\":\(pid),\"tid\":0,\"args\":{\(args)}}"
    }

    /// `text` as a JSON string.
    private static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
