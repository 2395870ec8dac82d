import Models

/// GNN training epoch after epoch on every rank, single-rank or distributed alike: the job's
/// deadline follows the epochs, a non-finite loss stops the run, the trace is flushed.
public struct GNNTrainingRun {
    public var epochs: Int
    /// When set, the job's deadline follows the epochs' pace (`JobDeadline.timeout`, updated
    /// after every epoch); otherwise it is left as it is.
    public var adaptiveDeadline: JobDeadline.Adaptive?
    /// Phases to write out after every epoch and close at the end, once started by the caller.
    public var trace: PhaseTrace?

    /// What a run measured.
    public struct Summary: Sendable {
        /// One per epoch, in order.
        public var reports: [GNNEpochReport]
        /// The peak resident set of every rank in bytes, on rank 0 (nil on the others).
        public var peakResidentSetBytes: [UInt64]?
    }

    public init(epochs: Int) { self.epochs = epochs }

    /// Trains `trainer` for `epochs` epochs on every rank of `world`, handing each epoch's report
    /// to `onEpoch` on every rank; throws at the first epoch whose training loss is not finite.
    public func run(_ trainer: any GNNEpochTraining, on world: Communicator,
                    onEpoch: (GNNEpochReport) throws -> Void) throws -> Summary {
        var deadline = adaptiveDeadline
        var reports: [GNNEpochReport] = []
        for epoch in 0..<epochs {
            JobDeadline.enter(step: epoch + 1)
            let report = try trainer.runEpoch(epoch)
            if let timeout = deadline?.record(stepSeconds: report.seconds) { JobDeadline.timeout = timeout }
            guard report.loss.isFinite else {
                throw ConfigError("epoch \(report.epoch): the training loss is \(report.loss.isNaN ? "NaN" : "\(report.loss)") "
                                  + "(lr \(trainer.stage.config.learningRate)); stopped (a lower --lr may help)")
            }
            reports.append(report)
            try onEpoch(report)
            try trace?.flush(comm: world)
        }
        try trace?.finish(comm: world)
        let peaks = try world.gather([peakResidentSetBytes()], root: 0)
        return Summary(reports: reports, peakResidentSetBytes: peaks)
    }
}
