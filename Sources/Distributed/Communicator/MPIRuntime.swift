import Foundation
import MPIShim
import Synchronization

/// The process's MPI library: initialised once on first use, finalised once at exit.
public enum MPIRuntime {
    private enum Phase: UInt8 { case uninitialized, active, finalized }

    private static let phase = Atomic<UInt8>(Phase.uninitialized.rawValue)
    private static let lock = Mutex<Communicator?>(nil)
    /// The session directory a singleton made for itself (see `initialize`); written and read
    /// only under `lock`.
    nonisolated(unsafe) private static var singletonSessionBase: String?

    /// The communicator of every process in the job (`MPI_COMM_WORLD`), initialising MPI with
    /// `MPI_THREAD_MULTIPLE` (`MPI_THREAD_FUNNELED` at least) and `MPI_ERRORS_RETURN` on first
    /// use. Size 1 without `mpirun`.
    public static func world() throws(MPIError) -> Communicator {
        let result: Result<Communicator, MPIError> = lock.withLock { world in
            if let world { return .success(world) }
            if phase.load(ordering: .acquiring) == Phase.finalized.rawValue {
                return .failure(finalizedError("MPI_Init_thread"))
            }
            do throws(MPIError) {
                let created = try initialize()
                world = created
                return .success(created)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The MPI library's own name and version (`MPI_Get_library_version`, callable before
    /// MPI starts), its first line, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ...".
    public static var libraryVersion: String {
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&text, &length) == MPI_SUCCESS else { return "unknown MPI library" }
        let version = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return version.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown MPI library"
    }

    /// True between the first `world()` and `finalize()`.
    public static var isActive: Bool { phase.load(ordering: .acquiring) == Phase.active.rawValue }

    /// Shuts MPI down (`MPI_Finalize`); later calls on any communicator throw. No-op if never started.
    public static func finalize() throws(MPIError) {
        let result: Result<Void, MPIError> = lock.withLock { world in
            guard phase.load(ordering: .acquiring) == Phase.active.rawValue else { return .success(()) }
            world = nil
            Watchdog.shared.closeRollCall()
            phase.store(Phase.finalized.rawValue, ordering: .releasing)
            let finalized = MPI_Finalize()
            if let base = singletonSessionBase { try? FileManager.default.removeItem(atPath: base) }
            return finalized == MPI_SUCCESS ? .success(()) : .failure(
                MPIError(call: "MPI_Finalize", errorClass: MPI_ERR_OTHER, reason: "MPI_ERR_OTHER: finalize failed"))
        }
        try result.get()
    }

    /// Ends every process of the job with `code` (`MPI_Abort`); used when ranks can no longer agree.
    public static func abort(code: Int32) -> Never {
        if isActive { _ = MPI_Abort(MPIShim_COMM_WORLD(), code) }
        exit(code)
    }

    /// Throws unless MPI is initialised and not finalised; the first line of every wrapper.
    @inline(__always)
    static func ensureActive(_ call: StaticString) throws(MPIError) {
        if phase.load(ordering: .relaxed) != Phase.active.rawValue {
            throw finalizedError("\(call)")
        }
    }

    private static func finalizedError(_ call: String) -> MPIError {
        MPIError(call: call, errorClass: MPI_ERR_OTHER,
                 reason: "MPI_ERR_OTHER: MPI has been finalized; no MPI call is allowed after MPI_Finalize")
    }

    private static func initialize() throws(MPIError) -> Communicator {
        // Started by no launcher, OpenMPI's singleton forks a daemon (for MPI_Comm_spawn, which
        // MPITrain never calls), and the fork runs OpenBLAS's fork handler, which has hung a
        // process whose other threads were inside BLAS. An isolated singleton starts none.
        if !JobReport.isLaunched {
            setenv("OMPI_MCA_ess_singleton_isolated", "1", 0)
            // A session directory of its own: the shared one under /tmp is removed by mpirun jobs
            // ending beside it, which has failed a singleton's start midway ("mkdir ... jf.0").
            if getenv("OMPI_MCA_orte_tmpdir_base") == nil {
                let base = FileManager.default.temporaryDirectory.appendingPathComponent("mpitrain-singleton-\(getpid())").path
                if (try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)) != nil {
                    setenv("OMPI_MCA_orte_tmpdir_base", base, 1)
                    singletonSessionBase = base
                }
            }
        }
        // A waiting rank yields its core in MPI's progress loop (OpenMPI does so by itself only
        // when oversubscribed), so ranks hung on a peer do not starve the machine's other work.
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        var provided: Int32 = 0
        // Start-up waits for every rank of the job: under the job's deadline, a rank that never
        // gets there ends the job instead of hanging it (no roll call yet; the line names the call).
        if let timeout = JobDeadline.timeout {
            Watchdog.shared.arm(call: "MPI_Init_thread", peer: -1, rank: JobReport.launchRank, size: JobReport.launchSize,
                                communicator: "world", timeout: timeout)
        }
        defer { Watchdog.shared.disarm() }
        // MPI calls stay on the main thread, except the watchdog's roll calls on a communicator
        // of their own when a deadline passes: those need MPI_THREAD_MULTIPLE.
        try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided), "MPI_Init_thread")
        phase.store(Phase.active.rawValue, ordering: .releasing)
        // Without this OpenMPI aborts the job on the first error instead of returning it.
        try check(MPI_Comm_set_errhandler(MPIShim_COMM_WORLD(), MPIShim_ERRORS_RETURN()), "MPI_Comm_set_errhandler")
        try check(MPI_Comm_set_errhandler(MPIShim_COMM_SELF(), MPIShim_ERRORS_RETURN()), "MPI_Comm_set_errhandler")
        guard provided >= Int32(MPI_THREAD_FUNNELED) else {
            throw MPIError(call: "MPI_Init_thread", errorClass: MPI_ERR_OTHER,
                           reason: "MPI_ERR_OTHER: thread level \(provided) provided, MPI_THREAD_FUNNELED needed")
        }
        let world = try Communicator(adopting: MPIShim_COMM_WORLD(), owned: false, name: "world")
        // A launcher of another MPI (OpenMPI's mpirun for an MPICH build, or the reverse) makes
        // each process a world of its own: N one-rank jobs instead of one job.
        guard JobReport.launchSize == 1 || world.size == JobReport.launchSize else {
            throw MPIError(call: "MPI_Init_thread", errorClass: MPI_ERR_OTHER,
                           reason: "MPI_ERR_OTHER: the launcher started \(JobReport.launchSize) processes but MPI sees \(world.size); "
                               + "this mpitrain was built against another MPI than the launcher's (OpenMPI and MPICH do not mix)")
        }
        if provided >= Int32(MPI_THREAD_MULTIPLE) && world.size > 1 {
            var duplicate: CommSlot = MPIShim_COMM_NULL()
            try check(MPI_Comm_dup(MPIShim_COMM_WORLD(), &duplicate), "MPI_Comm_dup")
            try check(MPI_Comm_set_errhandler(duplicate, MPIShim_ERRORS_RETURN()), "MPI_Comm_set_errhandler")
            Watchdog.shared.rollCall.withLock { $0 = RollCallChannel(comm: unwrapHandle(duplicate)!, rank: world.rank, size: world.size) }
        }
        return world
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
