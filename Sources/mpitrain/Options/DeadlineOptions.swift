import ArgumentParser
import Distributed

/// `--timeout` of the training commands: the deadline of every blocking MPI call.
struct DeadlineOptions: ParsableArguments {
    @Option(help: "Seconds a rank may wait in one MPI call before the job ends with one line naming the call, the step and the ranks that did not arrive (0: wait forever; default: the larger of 60 s and 20 x the median step).")
    var timeout: Double?

    func validate() throws {
        if let timeout { try Self.check(timeout) }
    }

    /// Refuses a deadline that is not a number of seconds in 0...1,000,000.
    static func check(_ seconds: Double) throws {
        guard seconds.isFinite, (0...1_000_000).contains(seconds) else {
            throw ValidationError("--timeout must be seconds in 0...1000000, not \(seconds)")
        }
    }

    /// Sets the job's deadline from `--timeout`; without it, returns the adaptive deadline the
    /// job updates step by step, starting at its floor.
    func apply() -> JobDeadline.Adaptive? {
        if let timeout {
            JobDeadline.timeout = timeout > 0 ? .seconds(timeout) : nil
            return nil
        }
        let adaptive = JobDeadline.Adaptive()
        JobDeadline.timeout = adaptive.timeout
        return adaptive
    }
}
