import Foundation

/// How a process of the job speaks and stops: one line per error, named by rank, and an exit
/// that stops the whole job when other ranks are still running.
public enum JobReport {
    /// This process's rank as the launcher set it, before MPI starts; 0 outside `mpirun`.
    public static var launchRank: Int {
        let environment = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"] {
            if let value = environment[key], let rank = Int(value) { return rank }
        }
        return 0
    }

    /// Number of processes the launcher started; 1 outside `mpirun`.
    public static var launchSize: Int {
        let environment = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let value = environment[key], let size = Int(value) { return size }
        }
        return 1
    }

    /// True when a launcher (mpirun, mpiexec, srun) started this process. Read once, before MPI
    /// starts: a process started alone becomes an MPI singleton whose start-up sets the PMIx
    /// variables a launcher would have.
    public static let isLaunched: Bool = {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }()

    /// True when standard output is a terminal someone watches, so a progress line may redraw
    /// in place: a process started alone, writing to a terminal. Under mpirun it is never taken
    /// as one, even with one rank: mpirun gives ranks a pseudo-terminal even when its own output
    /// goes to a file.
    public static var printsToTerminal: Bool { !isLaunched && isatty(STDOUT_FILENO) != 0 }

    /// Prints `mpitrain: error: <message>` on standard error, naming the rank in a multi-rank job.
    public static func error(_ message: String) {
        let who = launchSize > 1 ? "rank \(launchRank) of \(launchSize): " : ""
        FileHandle.standardError.write(Data("mpitrain: error: \(who)\(message)\n".utf8))
    }

    /// Prints `mpitrain: warning: <message>` on standard error: something went wrong that the
    /// run worked around.
    public static func warning(_ message: String) {
        FileHandle.standardError.write(Data("mpitrain: warning: \(message)\n".utf8))
    }

    /// Exits with `code`. A multi-rank job that is still running exits without finalising, so
    /// that mpirun ends the other ranks; otherwise MPI is finalised first.
    public static func exit(code: Int32) -> Never {
        if launchSize <= 1 || !MPIRuntime.isActive {
            try? MPIRuntime.finalize()
        }
        // No watchdog talk on MPI while the process tears it down.
        Watchdog.shared.closeRollCall()
        Foundation.exit(code)
    }
}
