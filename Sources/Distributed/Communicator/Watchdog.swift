import Foundation
import MPIShim
import Synchronization

/// Ends the job when a blocking MPI call outlives its deadline, so a job whose peer is gone,
/// stopped or cut off stops with one line naming the call, the step and the ranks that did not
/// arrive, instead of hanging forever.
///
/// One background thread per process, started on first use. Where MPI provides
/// `MPI_THREAD_MULTIPLE`, that thread holds a roll call on a communicator of its own when a
/// deadline passes: every rank whose main thread has waited in a call for a second or more, or
/// has declared itself busy (`JobDeadline.busy`), answers with what it is doing; ranks that do
/// not answer within a few seconds did not arrive (stopped, hung, cut off, or still computing).
/// When every missing rank answers busy, the wait is extended instead. The lowest waiting rank
/// prints the line; every rank that timed out then exits, and `mpirun` ends the rest.
/// Without `MPI_THREAD_MULTIPLE` the thread never calls MPI and the line names only the call.
final class Watchdog: Sendable {
    static let shared = Watchdog()

    /// Exit status of a process the watchdog ended, as GNU `timeout` uses.
    static let exitStatus: Int32 = 124

    /// How long a call must have waited before its rank answers roll calls: healthy calls are
    /// far shorter, so the thread makes no MPI call beside a working main thread.
    static let answerAfter: Duration = .seconds(1)
    /// How long a roll call waits for answers.
    static let rollCallGrace: Duration = .seconds(3)
    /// A pause of the watching thread (which wakes every 20 ms) this long means the process
    /// itself was stopped.
    static let stoppedGap: Duration = .seconds(1)

    private struct Armed {
        var call: StaticString
        var peer: Int
        var rank: Int
        var size: Int
        var communicator: String
        var timeout: Duration
        var since: ContinuousClock.Instant
        var deadline: ContinuousClock.Instant
    }

    private let armed = Mutex<Armed?>(nil)
    private let started = Atomic<Bool>(false)
    /// The job's step, for messages (-1: none yet), and what a step is called.
    let step = Atomic<Int>(-1)
    let stepName = Mutex("step")
    /// Long local work this rank is doing while peers may wait on it (nil: none).
    let busy = Mutex<String?>(nil)
    /// The deadline of calls on communicators that set none, in nanoseconds (0: none).
    let jobTimeoutNanoseconds = Atomic<Int64>(0)
    /// The world duplicated for roll calls; set once when MPI starts with `MPI_THREAD_MULTIPLE`.
    let rollCall = Mutex<RollCallChannel?>(nil)

    func arm(call: StaticString, peer: Int, rank: Int, size: Int, communicator: String, timeout: Duration) {
        startIfNeeded()
        let now = ContinuousClock.now
        armed.withLock {
            $0 = Armed(call: call, peer: peer, rank: rank, size: size, communicator: communicator,
                       timeout: timeout, since: now, deadline: now.advanced(by: timeout))
        }
    }

    func disarm() { armed.withLock { $0 = nil } }

    /// Starts the thread so that a rank busy before its first call can answer roll calls.
    func startIfNeeded() {
        guard !started.load(ordering: .relaxed),
              started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let thread = Thread { [self] in watch() }
        thread.name = "mpitrain-watchdog"
        thread.start()
    }

    private func watch() {
        var lastTick = ContinuousClock.now
        while true {
            let now = ContinuousClock.now
            if now - lastTick > Self.stoppedGap {
                // This process was stopped (SIGSTOP, a debugger) and has just been let go, as
                // mpirun does before ending a job: the time it lost is not its peers' to answer
                // for, so its wait starts again rather than accuse them.
                armed.withLock { if let timeout = $0?.timeout { $0?.deadline = now.advanced(by: timeout) } }
            }
            lastTick = now
            let state = armed.withLock { $0 }
            // The channel stays locked while this thread talks on it, so that `closeRollCall`
            // (before MPI_Finalize or an exit) waits for the talk to end.
            rollCall.withLock { channel in
                guard let channel else {
                    if let state, now >= state.deadline { fire(state, line: alone(state)) }
                    return
                }
                if state.map({ now - $0.since >= Self.answerAfter }) ?? false || busy.withLock({ $0 }) != nil {
                    channel.answer(with: status())
                }
                if let state, now >= state.deadline { expire(state, channel: channel) }
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// What this rank is doing, as a roll call reports it.
    private func status() -> RankStatus {
        let step = step.load(ordering: .relaxed)
        if let state = armed.withLock({ $0 }) {
            return RankStatus(step: step, waitingIn: "\(state.call)", busyWith: "")
        }
        return RankStatus(step: step, waitingIn: "", busyWith: busy.withLock { $0 } ?? "")
    }

    /// Stops roll calls for good, waiting for one in progress: MPI is about to end.
    func closeRollCall() {
        rollCall.withLock { $0 = nil }
    }

    private func alone(_ state: Armed) -> String {
        Self.alone(state, step: step.load(ordering: .relaxed), stepName: stepName.withLock { $0 })
    }

    private func expire(_ state: Armed, channel: RollCallChannel) {
        let stepName = stepName.withLock { $0 }
        // The roll call is of the whole job, in world ranks, whatever communicator the call is on.
        let answers = channel.call(with: status(), grace: Self.rollCallGrace)
        let away = answers.values.filter { $0.waitingIn.isEmpty }
        if answers.count == channel.size, !away.isEmpty, away.allSatisfy({ !$0.busyWith.isEmpty }) {
            // Every rank not waiting is alive and at work it declared long: wait again.
            armed.withLock { if $0?.since == state.since { $0?.deadline = ContinuousClock.now.advanced(by: state.timeout) } }
            return
        }
        let waiting = answers.keys.filter { !answers[$0]!.waitingIn.isEmpty }
        guard waiting.min() == channel.rank else {
            // The lowest waiting rank speaks; give it time to, before mpirun ends the job.
            Thread.sleep(forTimeInterval: 1.5)
            _exit(Self.exitStatus)
        }
        fire(state, line: Self.rollCallLine(state, answers: answers, of: channel, stepName: stepName))
    }

    private func fire(_ state: Armed, line: String) -> Never {
        FileHandle.standardError.write(Data(("mpitrain: error: " + line + "; ending the job\n").utf8))
        _exit(Self.exitStatus)
    }

    /// The line of a rank that cannot ask the others: its call and where.
    private static func alone(_ state: Armed, step: Int, stepName: String) -> String {
        let peer = state.peer >= 0 ? " with rank \(state.peer)" : ""
        let where_ = state.communicator == "world" ? "" : " on communicator \(state.communicator)"
        return "rank \(state.rank) of \(state.size)\(step >= 0 ? " at \(stepName) \(step)" : ""): \(state.call)\(peer)\(where_) "
            + "did not complete within \(format(state.timeout)) (a peer is gone or hung)"
    }

    /// The line of a roll call: who waits where, and who did not answer, in world ranks.
    private static func rollCallLine(_ state: Armed, answers: [Int: RankStatus], of channel: RollCallChannel, stepName: String) -> String {
        let step = answers[channel.rank]!.step
        var parts: [String] = []
        let groups = Dictionary(grouping: answers.keys.sorted()) { answers[$0]! }
        for (status, ranks) in groups.sorted(by: { $0.value[0] < $1.value[0] }) {
            let at = status.step >= 0 && status.step != step ? " at \(stepName) \(status.step)" : ""
            let doing = !status.waitingIn.isEmpty ? "waited in \(status.waitingIn)"
                : !status.busyWith.isEmpty ? "busy \(status.busyWith)" : "between calls"
            parts.append("\(names(ranks)) \(doing)\(at)")
        }
        let missing = (0..<channel.size).filter { answers[$0] == nil }
        if !missing.isEmpty { parts.append("\(names(missing)) did not answer (stopped, hung, cut off or still computing)") }
        let on = state.communicator == "world" ? "" : " on communicator \(state.communicator)"
        return "\(step >= 0 ? "\(stepName) \(step): " : "")\(state.call)\(on) did not complete within \(format(state.timeout)) "
            + "on \(channel.size) ranks: " + parts.joined(separator: "; ")
    }

    private static func names(_ ranks: [Int]) -> String {
        (ranks.count == 1 ? "rank " : "ranks ") + ranks.map(String.init).joined(separator: ", ")
    }

    static func format(_ d: Duration) -> String {
        let seconds = d.seconds
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.2f s", seconds)
    }
}

/// What a rank reports in a roll call: its step, and the call it waits in or the work it is
/// busy with (both empty: it answered between calls).
struct RankStatus: Hashable {
    var step: Int
    var waitingIn: String
    var busyWith: String

    /// Fixed-size wire form: step, then two NUL-padded 56-byte texts.
    static let bytes = 8 + 2 * 56

    func encoded() -> [UInt8] {
        var out = withUnsafeBytes(of: Int64(step).littleEndian, Array.init)
        for text in [waitingIn, busyWith] {
            let utf8 = Array(text.utf8.prefix(55))
            out += utf8 + [UInt8](repeating: 0, count: 56 - utf8.count)
        }
        return out
    }

    init(step: Int, waitingIn: String, busyWith: String) {
        self.step = step
        self.waitingIn = waitingIn
        self.busyWith = busyWith
    }

    init(decoding bytes: [UInt8]) {
        step = Int(Int64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }))
        func text(_ offset: Int) -> String {
            String(decoding: bytes[offset..<(offset + 56)].prefix { $0 != 0 }, as: UTF8.self)
        }
        waitingIn = text(8)
        busyWith = text(64)
    }
}

/// A duplicate of the world on which only watchdog threads talk (`MPI_THREAD_MULTIPLE`).
final class RollCallChannel: @unchecked Sendable {
    let comm: MPI_Comm
    let rank: Int
    let size: Int
    /// Sends in flight with their buffers, completed by later polls; used by the watchdog
    /// thread only.
    private var sending: [(request: RequestSlot, buffer: UnsafeMutableBufferPointer<UInt8>)] = []

    private static let askTag: Int32 = 1, answerTag: Int32 = 2

    init(comm: MPI_Comm, rank: Int, size: Int) {
        self.comm = comm
        self.rank = rank
        self.size = size
    }

    /// Answers every roll call waiting for this rank with `status`.
    func answer(with status: RankStatus) {
        completeSends()
        while let (source, _, _) = receive(tag: Self.askTag) { send(status, to: source, tag: Self.answerTag) }
    }

    /// Asks every other rank what it is doing and collects the answers for up to `grace`,
    /// answering other ranks' roll calls meanwhile (their calls count as answers).
    func call(with mine: RankStatus, grace: Duration) -> [Int: RankStatus] {
        for peer in 0..<size where peer != rank { send(mine, to: peer, tag: Self.askTag) }
        var answers = [rank: mine]
        let end = ContinuousClock.now.advanced(by: grace)
        while answers.count < size && ContinuousClock.now < end {
            while let (source, tag, status) = receive(tag: nil) {
                answers[source] = status
                if tag == Self.askTag { send(mine, to: source, tag: Self.answerTag) }
            }
            completeSends()
            Thread.sleep(forTimeInterval: 0.01)
        }
        return answers
    }

    /// Starts sending `status`; never waits, so a peer that never receives cannot block the
    /// watchdog (a small message leaves eagerly; its buffer is kept until the send completes).
    private func send(_ status: RankStatus, to peer: Int, tag: Int32) {
        let bytes = status.encoded()
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
        var request: RequestSlot = MPIShim_REQUEST_NULL()
        _ = MPI_Isend(buffer.baseAddress, Int32(buffer.count), MPIShim_UINT8_T(), Int32(peer), tag, comm, &request)
        sending.append((request, buffer))
    }

    private func completeSends() {
        sending.removeAll { entry in
            var request = entry.request, done: Int32 = 0
            var status = MPI_Status()
            guard MPI_Test(&request, &done, &status) == MPI_SUCCESS, done != 0 else { return false }
            entry.buffer.deallocate()
            return true
        }
    }

    /// The next waiting message with `tag` (any when nil), if one has arrived.
    private func receive(tag: Int32?) -> (source: Int, tag: Int32, status: RankStatus)? {
        var flag: Int32 = 0
        var probe = MPI_Status()
        guard MPI_Iprobe(MPIShim_ANY_SOURCE(), tag ?? MPIShim_ANY_TAG(), comm, &flag, &probe) == MPI_SUCCESS, flag != 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: RankStatus.bytes)
        var status = MPI_Status()
        _ = bytes.withUnsafeMutableBufferPointer { buffer in
            MPI_Recv(buffer.baseAddress, Int32(buffer.count), MPIShim_UINT8_T(), probe.MPI_SOURCE, probe.MPI_TAG, comm, &status)
        }
        return (Int(probe.MPI_SOURCE), probe.MPI_TAG, RankStatus(decoding: bytes))
    }
}
