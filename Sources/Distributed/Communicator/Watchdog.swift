import Foundation
import Synchronization

/// Ends the process when a blocking MPI call outlives its deadline, so a job whose peer is gone
/// or hung stops with a message naming the call and the rank instead of hanging forever.
///
/// One background thread per process, started on first use. MPI calls stay on the main thread
/// (MPI_THREAD_FUNNELED), so the watchdog never calls MPI: it prints and exits, and `mpirun`
/// then ends the other ranks.
final class Watchdog: Sendable {
    static let shared = Watchdog()

    /// Exit status of a process the watchdog ended, as GNU `timeout` uses.
    static let exitStatus: Int32 = 124

    private struct Armed {
        var call: StaticString
        var peer: Int
        var rank: Int
        var size: Int
        var communicator: String
        var timeout: Duration
        var deadline: ContinuousClock.Instant
    }

    private let armed = Mutex<Armed?>(nil)
    private let started = Atomic<Bool>(false)

    func arm(call: StaticString, peer: Int, rank: Int, size: Int, communicator: String, timeout: Duration) {
        startIfNeeded()
        let deadline = ContinuousClock.now.advanced(by: timeout)
        armed.withLock {
            $0 = Armed(call: call, peer: peer, rank: rank, size: size, communicator: communicator,
                       timeout: timeout, deadline: deadline)
        }
    }

    func disarm() { armed.withLock { $0 = nil } }

    private func startIfNeeded() {
        guard !started.load(ordering: .relaxed),
              started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let thread = Thread { [self] in watch() }
        thread.name = "mpitrain-watchdog"
        thread.start()
    }

    private func watch() {
        while true {
            let expired: Armed? = armed.withLock { state in
                guard let state, ContinuousClock.now >= state.deadline else { return nil }
                return state
            }
            if let expired { fire(expired) }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    private func fire(_ state: Armed) -> Never {
        let peer = state.peer >= 0 ? " with rank \(state.peer)" : ""
        let where_ = state.communicator == "world" ? "" : " on communicator \(state.communicator)"
        let line = "mpitrain: error: rank \(state.rank) of \(state.size): \(state.call)\(peer)\(where_) "
            + "did not complete within \(Self.format(state.timeout)) (a peer is gone or hung); ending the job\n"
        FileHandle.standardError.write(Data(line.utf8))
        _exit(Self.exitStatus)
    }

    private static func format(_ d: Duration) -> String {
        let seconds = d.seconds
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.2f s", seconds)
    }
}
