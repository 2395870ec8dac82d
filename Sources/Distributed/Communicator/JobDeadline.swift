/// The deadline a job's blocking MPI calls run under, and what the watchdog says when one
/// passes (see `Watchdog`): the job's step, and long local work its peers may wait on.
///
/// A communicator's own `timeout` takes precedence; without one, every blocking call of the
/// process waits at most `timeout`. Jobs set it from `--timeout`, or adapt it to their steps
/// (`Adaptive`).
public enum JobDeadline {
    /// The deadline of blocking calls on communicators that set none (nil: wait forever).
    public static var timeout: Duration? {
        get {
            let nanoseconds = Watchdog.shared.jobTimeoutNanoseconds.load(ordering: .relaxed)
            return nanoseconds > 0 ? .nanoseconds(nanoseconds) : nil
        }
        set {
            let nanoseconds = newValue.map { max(1, Int64(min($0.seconds * 1e9, 9e18))) } ?? 0
            Watchdog.shared.jobTimeoutNanoseconds.store(nanoseconds, ordering: .relaxed)
        }
    }

    /// The step the job is at, named when a deadline passes.
    public static func enter(step: Int) {
        Watchdog.shared.step.store(step, ordering: .relaxed)
    }

    /// What the job calls its steps in messages ("step" unless set, "epoch" for `gnn`).
    public static var stepName: String {
        get { Watchdog.shared.stepName.withLock { $0 } }
        set { Watchdog.shared.stepName.withLock { $0 = newValue } }
    }

    /// Runs `body`, long local work during which peers may wait on this rank (a plan search,
    /// reading data): a waiting peer whose deadline passes finds this rank `what` and waits
    /// again, instead of taking it for hung.
    public static func busy<R>(_ what: String, _ body: () throws -> R) rethrows -> R {
        Watchdog.shared.startIfNeeded()
        Watchdog.shared.busy.withLock { $0 = what }
        defer { Watchdog.shared.busy.withLock { $0 = nil } }
        return try body()
    }

    /// A deadline that follows the job's pace: the larger of `floor` and `multiple` times the
    /// median of the last steps, so a job of slow steps is not cut short and a fast one is not
    /// left hanging for long.
    public struct Adaptive: Sendable {
        public var floor: Duration
        public var multiple: Double
        private var recent: [Double] = []
        private var next = 0
        private var median: Double?

        /// Steps the median is taken over, and steps between two takes of it.
        static let window = 64, every = 16

        public init(floor: Duration = .seconds(60), multiple: Double = 20) {
            self.floor = floor
            self.multiple = multiple
        }

        /// Records a step of `seconds` and returns the deadline that follows.
        public mutating func record(stepSeconds seconds: Double) -> Duration {
            if recent.count < Self.window { recent.append(seconds) } else { recent[next] = seconds }
            next = (next + 1) % Self.window
            if median == nil || next % Self.every == 0 { median = recent.sorted()[recent.count / 2] }
            return timeout
        }

        public var timeout: Duration {
            guard let median else { return floor }
            return max(floor, .seconds(min(median * multiple, 1e9)))
        }
    }
}
