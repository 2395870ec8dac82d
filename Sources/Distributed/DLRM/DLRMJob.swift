import Foundation
import Models
import Sharding

/// One DLRM training run across the ranks of `world`, on a plan the coordinator has made:
/// every step, each rank trains on its slice of the global batch; every `reportEvery` steps
/// every rank's phase times are gathered; lookups are audited, checkpoints saved, the plan
/// re-searched from measured reuse and the model evaluated when the settings ask. The job
/// reports through events and a summary, which the caller prints; the gathered figures
/// (phases, lookup reports, evaluations, the summary) reach rank 0 only.
public final class DLRMJob {
    /// What the run does.
    public struct Settings: Sendable {
        public var steps: Int
        public var batchSize: Int
        public var schedule: LearningRateSchedule
        public var seed: UInt64
        public var embeddingOptimizer: EmbeddingOptimizer = .sgd
        public var denseOptimizer: DenseOptimizer.Kind = .sgd
        /// Threads of the embedding kernels.
        public var threads = 1
        /// Steps between progress reports.
        public var reportEvery = 100
        /// Steps between evaluations on the held-out samples (0: only at the end).
        public var evalEvery = 0
        public var evalSamples = 16384
        public var checkpointDirectory: String?
        /// Steps between checkpoints (0: only at the end); needs `checkpointDirectory`.
        public var checkpointEvery = 0
        /// Whether the run starts from the newest intact checkpoint in `checkpointDirectory`.
        public var resume = ResumePolicy.never
        /// Complete checkpoints kept after each save, newest first (0: all).
        public var keepCheckpoints = 0
        /// Where every rank's step phases are written as a trace, as the run goes.
        public var trace: String?
        public var audit: LookupAudit?
        /// Steps between re-plans from the audit's measured reuse (0: never); needs
        /// `checkpointDirectory`, an audit and a `Replanning`.
        public var replanEvery = 0
        /// Predicted share of the step a new plan must save to be adopted.
        public var replanGain = 0.05
        /// What a step whose loss is NaN or infinite does.
        public var nonFiniteLoss = NonFiniteLossPolicy.stop
        /// When set, the deadline of every blocking call follows the steps' pace
        /// (`JobDeadline.timeout`, updated after every step); otherwise it is left as it is.
        public var adaptiveDeadline: JobDeadline.Adaptive?

        public init(steps: Int, batchSize: Int, schedule: LearningRateSchedule, seed: UInt64) {
            self.steps = steps
            self.batchSize = batchSize
            self.schedule = schedule
            self.seed = seed
        }
    }

    /// When a run starts from a checkpoint.
    public enum ResumePolicy: String, CaseIterable, Sendable {
        /// Never: the run starts at step 0.
        case never
        /// Always: a directory without a checkpoint is an error.
        case always
        /// When there is one: a requeued job starts fresh the first time and resumes after.
        case auto
    }

    /// What to do with a step whose global loss is NaN or infinite: its update is never applied.
    public enum NonFiniteLossPolicy: String, CaseIterable, Sendable {
        /// End the run with one line naming the step.
        case stop
        /// Pass over the batch and go on; the summary counts such steps.
        case skip
    }

    /// The lookup monitor's settings (see `LookupMonitor`).
    public struct LookupAudit: Sendable {
        public var every: Int
        public var auditedFraction = 1.0
        public var hotThreshold = 32
        public var topK = 5
        public var auditWidth = 4096
        public var hotWidth = 4096
        public var faults: LookupFaults?

        public init(every: Int) { self.every = every }
    }

    /// How the coordinator re-plans: the planner, and the model that prices plans, by name.
    public struct Replanning {
        public var planner: any Planner
        public var predictor: any PlanCostModel

        public init(planner: any Planner, predictor: any PlanCostModel) {
            self.planner = planner
            self.predictor = predictor
        }
    }

    /// One report of a window of steps.
    public struct Progress: Sendable {
        public var step: Int
        /// Mean training loss over the window.
        public var loss: Double
        public var windowSteps: Int
        public var samplesPerSecond: Double
        public var learningRate: Float
        public var etaSeconds: Double
        /// Every rank's mean phase times per step over the window (rank 0 only).
        public var ranks: [RankPhases]?
    }

    /// A re-planning decision of the coordinator.
    public struct Replan: Sendable {
        public var step: Int
        public var algorithm: String
        /// Predicted milliseconds per step of the current and the searched plan, on the measured reuse.
        public var current: Double
        public var searched: Double
        public var adopted: Bool
        public var plan: ShardingPlan
    }

    public enum Event {
        /// Resumed from the checkpoint at `path`, after passing over the damaged ones in `skipped`.
        case resumed(path: String, step: Int, skipped: [(path: String, problem: String)])
        /// `ResumePolicy.auto` found no checkpoint in `directory`: the run starts at step 0.
        case startedFresh(directory: String)
        case progress(Progress)
        /// A lookup audit report (rank 0 only).
        case lookups(LookupReport)
        /// A re-planning decision (rank 0 only).
        case replan(Replan)
        /// Held-out metrics after `step` steps (rank 0 only).
        case evaluation(step: Int, metrics: BinaryMetrics)
    }

    /// The end of a run, on rank 0.
    public struct Summary: Sendable {
        /// Mean training loss over the last report's window, and its steps.
        public var trainLoss: Double
        public var lastWindowSteps: Int
        public var heldOut: BinaryMetrics
        public var stepsTrained: Int
        public var trainSeconds: Double
        /// Seconds reading or drawing batches, or waiting for the reading thread, apart from training.
        public var dataSeconds: Double
        /// Every rank's share of its step time spent waiting for data.
        public var dataShareByRank: [Double]
        /// The step at which data read once ran out, when it did before the last step.
        public var dataEndedAtStep: Int?
        /// Steps passed over for a non-finite loss (`NonFiniteLossPolicy.skip`).
        public var skippedSteps: Int
        /// Bytes every rank's collectives sent per training step, summed over ranks, by kind
        /// (multi-rank runs).
        public var bytesSentPerStep: [(kind: TrafficKind, bytes: Int)]?

        public var samplesPerSecond: Double { Double(stepsTrained) * Double(batchSize) / max(trainSeconds, 1e-9) }
        let batchSize: Int
    }

    public let world: Communicator
    public let config: DLRMConfig
    public let specs: [TableSpec]
    public let task: PlanningTask
    public let source: ClickSource
    public let settings: Settings
    let replanning: Replanning?
    public private(set) var plan: ShardingPlan
    public private(set) var trainer: ShardedDLRM
    /// Every rank's phases, kept across re-plans (which replace the trainer).
    public let trace: PhaseTrace

    /// Builds this rank's part of the model placed by `plan` (validated on every rank by the
    /// coordinator) over the tables `specs`; `replanning` is needed on rank 0 only.
    public init(world: Communicator, config: DLRMConfig, specs: [TableSpec], task: PlanningTask, plan: ShardingPlan, source: ClickSource,
                settings: Settings, replanning: Replanning? = nil) throws {
        guard settings.batchSize % world.size == 0 else {
            throw ConfigError("--batch-size \(settings.batchSize) does not split evenly over \(world.size) ranks")
        }
        self.world = world
        self.config = config
        self.specs = specs
        self.task = task
        self.source = source
        self.settings = settings
        self.replanning = replanning
        self.plan = plan
        trace = PhaseTrace(enabled: settings.trace != nil)
        trainer = try Self.trainer(world: world, config: config, specs: specs, plan: plan, settings: settings, trace: trace)
    }

    /// Runs every step, reporting to `report` as it goes; returns the summary on rank 0. Data
    /// that is read once (standard input) and ends before the last step ends the run there.
    @discardableResult
    public func run(_ report: (Event) throws -> Void) throws -> Summary? {
        let batchSize = settings.batchSize
        var steps = settings.steps
        var firstStep = 0
        if settings.resume != .never, let directory = settings.checkpointDirectory {
            if settings.resume == .auto && DLRMCheckpoint.newest(in: directory) == nil {
                try report(.startedFresh(directory: directory))
            } else {
                let resumed = try DLRMCheckpoint.resume(into: trainer, run: run, directory: directory)
                firstStep = resumed.step
                try JobDeadline.busy("reading the data") { try source.skip(steps: min(firstStep, steps), size: batchSize) }
                try report(.resumed(path: resumed.path, step: firstStep, skipped: resumed.skipped))
            }
        }
        var trainSeconds = 0.0, dataSeconds = 0.0, windowDataSeconds = 0.0
        var traffic = TrafficReport()
        var windowLoss = 0.0, windowSteps = 0, windowSkipped = 0, lastWindowLoss = 0.0, lastWindowSteps = 0, skippedSteps = 0, skippedInARow = 0
        var heldOut: ClickBatch?
        var lastEvaluation: BinaryMetrics?
        var lastLookups: LookupReport?
        var dataEnded: Int?
        let local = batchSize / world.size
        var deadline = settings.adaptiveDeadline

        /// Reports the window, saves, re-plans and evaluates as the settings ask after step `done`.
        func finish(step done: Int) throws {
            if windowSteps > 0 && (done % settings.reportEvery == 0 || done == steps) {
                lastWindowLoss = windowSteps > windowSkipped ? windowLoss / Double(windowSteps - windowSkipped) : .nan
                lastWindowSteps = windowSteps
                let phases = try gatherPhases(steps: windowSteps, dataSeconds: windowDataSeconds)
                try report(.progress(Progress(step: done, loss: lastWindowLoss, windowSteps: windowSteps,
                                              samplesPerSecond: Double((done - firstStep) * batchSize) / max(trainSeconds, 1e-9),
                                              learningRate: settings.schedule.rate(at: done - 1),
                                              etaSeconds: Double(steps - done) * (trainSeconds + dataSeconds) / Double(max(done - firstStep, 1)),
                                              ranks: phases)))
                windowLoss = 0
                windowSteps = 0
                windowSkipped = 0
                windowDataSeconds = 0
                try trace.flush(comm: world)
            }
            if let monitor = trainer.monitor, monitor.reportsAfter(step: done - 1) {
                let start = ContinuousClock.now
                let lookups = try monitor.report(world: world, topK: settings.audit?.topK ?? 0)
                trainSeconds += (ContinuousClock.now - start).seconds
                lastLookups = lookups
                if let lookups { try report(.lookups(lookups)) }
            }
            if let directory = settings.checkpointDirectory,
               (settings.checkpointEvery > 0 && done % settings.checkpointEvery == 0) || done == steps {
                try DLRMCheckpoint.save(trainer, step: done, run: run, directory: directory)
                if settings.keepCheckpoints > 0 {
                    try world.agreeing { if world.rank == 0 { try DLRMCheckpoint.prune(in: directory, keeping: settings.keepCheckpoints) } }
                }
            }
            if settings.replanEvery > 0, done % settings.replanEvery == 0, done < steps, let directory = settings.checkpointDirectory {
                try replan(measured: lastLookups, step: done, directory: directory, report: report)
            }
            if (settings.evalEvery > 0 && done % settings.evalEvery == 0) || done == steps {
                if heldOut == nil || source.heldOutGrows { heldOut = try source.heldOut(count: settings.evalSamples) }
                lastEvaluation = try evaluate(heldOut!)
                if let lastEvaluation { try report(.evaluation(step: done, metrics: lastEvaluation)) }
            }
        }

        if let path = settings.trace { try trace.start(writingTo: path, comm: world, title: "mpitrain dlrm on \(world.size) ranks") }
        var step = firstStep
        while step < steps {
            JobDeadline.enter(step: step + 1)
            var start = ContinuousClock.now
            let next = try JobDeadline.busy("reading the data") {
                try source.next(step: step, size: batchSize, slice: world.rank * local ..< (world.rank + 1) * local)
            }
            let waited = (ContinuousClock.now - start).seconds
            dataSeconds += waited
            windowDataSeconds += waited
            guard let batch = next else {
                // Every rank reads the same lines, so all see the end at the same step.
                dataEnded = step
                steps = step
                if step > firstStep { try finish(step: step) }
                break
            }
            start = ContinuousClock.now
            trainer.monitor?.begin(step: step)
            trace.step = step + 1
            let trafficBefore = world.traffic()
            let loss = try trainer.trainStep(batch, learningRate: settings.schedule.rate(at: step))
            traffic = traffic + (world.traffic() - trafficBefore)
            let stepSeconds = (ContinuousClock.now - start).seconds
            trainSeconds += stepSeconds
            if deadline != nil { JobDeadline.timeout = deadline!.record(stepSeconds: stepSeconds) }
            windowSteps += 1
            step += 1
            if loss.isFinite {
                windowLoss += loss
                skippedInARow = 0
            } else {
                let stated = "step \(step): the training loss is \(loss.isNaN ? "NaN" : "\(loss)") (lr \(settings.schedule.rate(at: step - 1)))"
                guard settings.nonFiniteLoss == .skip else {
                    throw ConfigError("\(stated); stopped before applying its update (a lower --lr, or --nan-policy skip to pass over such batches)")
                }
                skippedInARow += 1
                guard skippedInARow < Self.nonFiniteStepsInARow else {
                    throw ConfigError("\(stated) for the \(skippedInARow)th step in a row: the weights themselves have diverged; stopped (a lower --lr)")
                }
                windowSkipped += 1
                skippedSteps += 1
            }
            try finish(step: step)
        }
        let summed = world.size > 1 ? try world.reduce(traffic) : nil
        let dataShares = try world.gatherv([dataSeconds / max(dataSeconds + trainSeconds, 1e-12)], root: 0)
        // The last step evaluated already; a run resumed at its end has not.
        if steps <= firstStep { lastEvaluation = try evaluate(source.heldOut(count: settings.evalSamples)) }
        try trace.finish(comm: world)
        guard let final = lastEvaluation else { return nil }
        let trained = max(steps - firstStep, 0)
        return Summary(trainLoss: lastWindowLoss, lastWindowSteps: lastWindowSteps, heldOut: final, stepsTrained: trained,
                       trainSeconds: trainSeconds, dataSeconds: dataSeconds, dataShareByRank: dataShares.map { Array($0.values) } ?? [],
                       dataEndedAtStep: dataEnded, skippedSteps: skippedSteps,
                       bytesSentPerStep: summed.flatMap { summed in
                           trained == 0 ? nil : TrafficKind.allCases.filter { summed[$0].bytesSent > 0 }
                               .map { ($0, Int(summed[$0].bytesSent) / trained) }
                       },
                       batchSize: batchSize)
    }

    /// Metrics of `batch`'s predictions on rank 0 (nil elsewhere): every rank predicts its share
    /// of each slice of max(batch size, 4,096) samples; the logits are gathered in sample order.
    public func evaluate(_ batch: ClickBatch) throws -> BinaryMetrics? {
        let ranks = world.size, rank = world.rank, slice = max(settings.batchSize, 4096)
        var logits: [Float] = []
        let usable = batch.count / ranks * ranks
        for start in stride(from: 0, to: usable, by: slice) {
            let share = (min(start + slice, usable) - start) / ranks
            let mine = try trainer.predict(batch.samples(start + rank * share ..< start + (rank + 1) * share))
            if let gathered = try world.gatherv(mine, root: 0) { logits += gathered.values }
        }
        return rank == 0 ? BinaryMetrics(logits: logits, labels: Array(batch.labels[0..<usable])) : nil
    }

    /// Steps in a row with a non-finite loss that end even a run that skips them: by then the
    /// weights, not a batch, are at fault.
    static let nonFiniteStepsInARow = 10

    /// This run's identity in its checkpoints: the seed and the table specs.
    public var run: DLRMCheckpoint.RunIdentity { DLRMCheckpoint.RunIdentity(seed: settings.seed, tables: specs) }

    // MARK: - Internals

    /// A trainer for `plan`, with the settings' threads and lookup monitor.
    private static func trainer(world: Communicator, config: DLRMConfig, specs: [TableSpec], plan: ShardingPlan,
                                settings: Settings, trace: PhaseTrace) throws -> ShardedDLRM {
        let trainer = try ShardedDLRM(world: world, config: config, shardsByRank: plan.shardsByRank(tables: specs),
                                      replicatedTables: plan.replicatedTables(tables: specs), embeddingOptimizer: settings.embeddingOptimizer,
                                      denseOptimizer: settings.denseOptimizer, seed: settings.seed, trace: trace)
        trainer.embeddingThreads = settings.threads
        if let audit = settings.audit {
            trainer.monitor = try LookupMonitor(every: audit.every, tableRows: config.tables.map(\.rows), countedTables: trainer.countedTables,
                                                rank: world.rank, ranks: world.size, hotThreshold: audit.hotThreshold,
                                                auditWidth: audit.auditWidth, hotWidth: audit.hotWidth, auditedFraction: audit.auditedFraction,
                                                faults: audit.faults, seed: settings.seed)
        }
        return trainer
    }

    /// Every rank's mean phase times per step since the last report, on rank 0 (nil elsewhere).
    private func gatherPhases(steps: Int, dataSeconds: Double) throws -> [RankPhases]? {
        let p = trainer.phaseSeconds, scale = 1000 / Double(max(steps, 1))
        trainer.resetPhaseSeconds()
        let mine = [p.embedding, p.communication, p.dense, p.embeddingCPU, p.denseCPU, dataSeconds].map { $0 * scale }
        guard let all = try world.gatherv(mine, root: 0) else { return nil }
        return (0..<world.size).map { r in
            let v = all[r]
            return RankPhases(embeddingMilliseconds: v[v.startIndex], communicationMilliseconds: v[v.startIndex + 1],
                              denseMilliseconds: v[v.startIndex + 2], embeddingCPUMilliseconds: v[v.startIndex + 3],
                              denseCPUMilliseconds: v[v.startIndex + 4], dataMilliseconds: v[v.startIndex + 5])
        }
    }

    /// The coordinator's re-planning step: it searches a plan for the tables as measured in the
    /// last audit window (their reuse bins in place of the specs'), predicts the current and
    /// the new plan's cost, and keeps the current plan unless the new one is predicted faster
    /// by more than `replanGain`. Every rank gets the decision with the plan; a new plan is
    /// adopted by saving the model as the checkpoint of `step` and loading it resharded.
    private func replan(measured lookups: LookupReport?, step: Int, directory: String, report: (Event) throws -> Void) throws {
        let current = plan
        var decision: Replan?
        let next = try world.coordinatePlan(tables: specs, memoryPerRank: task.memoryPerRank, optimizer: settings.embeddingOptimizer) {
            guard let lookups, let replanning else { return current }
            let measured = try zip(specs, lookups.reuse).map { spec, bins in
                guard let bins else { return spec }
                var table = try TableSpec(name: spec.name, rows: spec.rows, dim: spec.dim, poolingFactor: spec.poolingFactor, bins: bins)
                table.bagSizes = spec.bagSizes
                return table
            }
            var measuredTask = task
            measuredTask.tables = measured
            let candidate = try replanning.planner.plan(measuredTask)
            let now = try replanning.predictor.cost(of: current, tables: measured).total
            let searched = try replanning.predictor.cost(of: candidate, tables: measured).total
            let adopted = candidate != current && 1 - searched / max(now, 1e-12) > settings.replanGain
            decision = Replan(step: step, algorithm: replanning.planner.name, current: now, searched: searched, adopted: adopted, plan: candidate)
            return adopted ? candidate : current
        }
        if let decision { try report(.replan(decision)) }
        guard next != current else { return }
        if DLRMCheckpoint.newest(in: directory)?.step != step { try DLRMCheckpoint.save(trainer, step: step, run: run, directory: directory) }
        let resharded = try Self.trainer(world: world, config: config, specs: specs, plan: next, settings: settings, trace: trace)
        try DLRMCheckpoint.load(into: resharded, run: run, directory: directory, step: step)
        trainer = resharded
        plan = next
    }
}

/// One rank's mean time per step in each phase of training: wall time of its embedding
/// kernels, of its exchanges and allreduces (waiting for other ranks included) and of its MLPs
/// and interaction; the CPU time of the two compute phases, which excludes time spent
/// waiting for a core when ranks outnumber cores; and the wall time waiting for data.
public struct RankPhases: Codable, Sendable {
    public var embeddingMilliseconds: Double
    public var communicationMilliseconds: Double
    public var denseMilliseconds: Double
    public var embeddingCPUMilliseconds: Double
    public var denseCPUMilliseconds: Double
    /// Waiting for this rank's slice of the batch (reading it, or for the thread that reads ahead).
    public var dataMilliseconds: Double

    public init(embeddingMilliseconds: Double, communicationMilliseconds: Double, denseMilliseconds: Double,
                embeddingCPUMilliseconds: Double, denseCPUMilliseconds: Double, dataMilliseconds: Double) {
        self.embeddingMilliseconds = embeddingMilliseconds
        self.communicationMilliseconds = communicationMilliseconds
        self.denseMilliseconds = denseMilliseconds
        self.embeddingCPUMilliseconds = embeddingCPUMilliseconds
        self.denseCPUMilliseconds = denseCPUMilliseconds
        self.dataMilliseconds = dataMilliseconds
    }

    private enum CodingKeys: String, CodingKey {
        case embeddingMilliseconds, communicationMilliseconds, denseMilliseconds, embeddingCPUMilliseconds, denseCPUMilliseconds, dataMilliseconds
    }

    /// Also reads the phases of earlier builds, which did not time the data (0 then).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        embeddingMilliseconds = try container.decode(Double.self, forKey: .embeddingMilliseconds)
        communicationMilliseconds = try container.decode(Double.self, forKey: .communicationMilliseconds)
        denseMilliseconds = try container.decode(Double.self, forKey: .denseMilliseconds)
        embeddingCPUMilliseconds = try container.decode(Double.self, forKey: .embeddingCPUMilliseconds)
        denseCPUMilliseconds = try container.decode(Double.self, forKey: .denseCPUMilliseconds)
        dataMilliseconds = try container.decodeIfPresent(Double.self, forKey: .dataMilliseconds) ?? 0
    }
}
