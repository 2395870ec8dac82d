import ArgumentParser
import Distributed
import Foundation
import Models
import Sharding

/// `mpitrain dlrm`: trains a DLRM on synthetic clicks or Criteo data.
struct DLRMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlrm",
        abstract: "Train a DLRM on synthetic clicks or Criteo data (TSV, gzip or preprocessed).")

    @OptionGroup(title: "Model") var model: DLRMModelOptions

    /// Where samples come from.
    enum DataSource: String, CaseIterable, ExpressibleByArgument {
        case synthetic, criteo
        case criteoBinary = "criteo-bin"

        /// The format of the files it reads, if it reads files.
        var format: ClickFiles.Format? {
            switch self {
            case .synthetic: nil
            case .criteo: .tsv
            case .criteoBinary: .binary
            }
        }
    }

    @OptionGroup(title: "Data") var input: DataOptions
    @OptionGroup(title: "Plan") var planning: PlanOptions
    @OptionGroup(title: "Training") var training: TrainingOptions
    @OptionGroup(title: "Outputs") var outputs: OutputOptions
    @OptionGroup(title: "Checkpoints") var checkpoints: CheckpointOptions
    @OptionGroup(title: "Self-measurement") var measurement: MeasurementOptions


    func validate() throws {
        try checkThreads(training.threads)
        guard training.steps >= 1, training.batchSize >= 1, outputs.printEvery >= 1, training.evalEvery >= 0, training.evalSamples >= 1, (input.numIndicesPerLookup ?? 0) >= 0, (input.holdoutEvery ?? 0) >= 0 else {
            throw ValidationError("--steps, --batch-size, --print-every and --eval-samples must be at least 1; counts at least 0")
        }
        if input.tables != nil, model.archEmbeddingSize != nil || input.numIndicesPerLookup != nil || input.randomPooling || input.indexDistribution != nil {
            throw ValidationError("--tables gives every table's rows, dim, pooling, bag sizes and distribution; drop --arch-embedding-size, --num-indices-per-lookup, --random-pooling and --index-distribution")
        }
        if input.data.format != nil && input.dataPath.isEmpty { throw ValidationError("--data \(input.data.rawValue) needs --data-path") }
        if input.data.format == nil && !(input.dataPath.isEmpty && input.testFiles.isEmpty && input.holdoutEvery == nil) {
            throw ValidationError("--data-path, --test-files and --holdout-every read Criteo data: add --data criteo (TSV, gzip) or --data criteo-bin (preprocessed)")
        }
        if planning.plan != nil && planning.planAlgo != nil { throw ValidationError("--plan and --plan-algo exclude each other") }
        guard planning.planRefine >= 0 else { throw ValidationError("--plan-refine must be at least 0") }
        if planning.planRefine > 0 && planning.planAlgo == nil { throw ValidationError("--plan-refine needs --plan-algo") }
        if (checkpoints.resume != nil || checkpoints.checkpointEvery > 0 || checkpoints.keepCheckpoints > 0) && checkpoints.checkpointDir == nil {
            throw ValidationError("--resume, --checkpoint-every and --keep-checkpoints need --checkpoint-dir")
        }
        guard checkpoints.checkpointEvery >= 0, checkpoints.keepCheckpoints >= 0 else { throw ValidationError("--checkpoint-every and --keep-checkpoints must be at least 0") }
        guard measurement.sketchEvery >= 0, measurement.topK >= 0 else { throw ValidationError("--sketch-every and --top-k must be at least 0") }
        if measurement.injectFaults != nil && measurement.sketchEvery == 0 { throw ValidationError("--inject-faults needs --sketch-every") }
        if planning.replanEvery > 0 && (measurement.sketchEvery == 0 || planning.replanEvery % measurement.sketchEvery != 0 || checkpoints.checkpointDir == nil) {
            throw ValidationError("--replan-every needs --checkpoint-dir and --sketch-every dividing it")
        }
        guard planning.replanEvery >= 0 else { throw ValidationError("--replan-every must be at least 0") }
    }

    func run() throws {
        let adaptiveDeadline = training.deadline.apply()
        let world = try MPIRuntime.world()
        guard training.batchSize % world.size == 0 else {
            throw ConfigError("--batch-size \(training.batchSize) does not split evenly over \(world.size) ranks")
        }
        let specs = try tableSpecs()
        let config = try model.config(tables: specs.map(\.embedding))
        try checkOutputs()
        let needed = config.estimatedBytes(samples: max(training.batchSize / world.size, training.evalSamples / world.size), share: 1 / Double(world.size))
        let physical = Double(ProcessInfo.processInfo.physicalMemory)
        guard needed <= physical else {
            throw ConfigError("--arch-mlp-bot \(model.archMlpBot), --arch-mlp-top \(model.archMlpTop), --batch-size \(training.batchSize) and these tables "
                              + String(format: "need about %.1f GiB per rank, over this machine's %.1f GiB", needed / 0x1p30, physical / 0x1p30))
        }
        let source = try JobDeadline.busy("reading the data") { try makeSource(config, specs: specs, world: world) }
        let memoryPerRank = try planning.memory.map { text throws(PlanError) in try ByteCount(parsing: text).bytes }
        let task = PlanningTask(tables: specs, ranks: world.size,
                                memoryPerRank: memoryPerRank ?? specs.reduce(0) { $0 + $1.bytes(columns: $1.dim, optimizer: model.embeddingOptimizer) },
                                batchSize: training.batchSize, optimizer: model.embeddingOptimizer, dataParallelBytes: try planning.shardingTypes.dataParallelBytes())
        var searchSeconds = 0.0, refinement: String?, hardwareNotes: [String] = []
        let placement = try world.coordinatePlan(tables: specs, memoryPerRank: memoryPerRank, optimizer: model.embeddingOptimizer) {
            if let plan = planning.plan { return try ShardingPlan.read(plan) }
            guard let planAlgo = planning.planAlgo else { return ShardingPlan.roundRobin(specs, ranks: world.size) }
            hardwareNotes = try planning.planModels.hardwareNotes(planners: [planAlgo])
            let planner = try PlannerCatalog.planner(named: planAlgo, seed: training.seed, communication: try planning.planModels.communication(),
                                                     models: planning.planModels.learned)
            let start = ContinuousClock.now
            defer { searchSeconds = (ContinuousClock.now - start).seconds }
            let plan = try planner.plan(task)
            guard planning.planRefine > 0 else { return plan }
            let communication = try planning.planModels.communication()
            let oracle = CostOracle(batchSize: training.batchSize, communication: communication, seed: training.seed, conditions: .concurrent)
            let predictor = try PlanReport.predictor(planning.planModels, batch: training.batchSize, communication: communication, planner: planAlgo,
                                                     optimizer: model.embeddingOptimizer).model
            let outcome = try PlanRefinement(task: task, predictor: predictor, budget: planning.planRefine) { try oracle.costs(of: $0, tables: specs) }
                .refine(plan)
            refinement = PlanReport.refinement(outcome)
            return outcome.plan
        }
        let root = world.isRoot
        // The coordinator's prediction of each rank's embedding and communication time, and its source.
        let prediction = root ? (try? planning.planModels.communication()).flatMap { communication in
            try? PlanReport.predictor(planning.planModels, batch: training.batchSize, communication: communication, planner: planning.planAlgo,
                                      optimizer: model.embeddingOptimizer)
        } : nil
        let job = try DLRMJob(world: world, config: config, specs: specs, task: task, plan: placement, source: source,
                              settings: try settings(adaptiveDeadline: adaptiveDeadline), replanning: root && planning.replanEvery > 0 ? try replanning() : nil)
        var predicted = prediction.flatMap { try? $0.model.cost(of: placement, tables: specs) }
        var planVersusHeuristics: String?
        if root {
            let dims = Set(config.tables.map(\.dim)).sorted()
            print("model: bottom \(model.archMlpBot), top \(config.interactionWidth)-\(model.archMlpTop), \(config.tables.count) tables "
                  + "(\(config.tables.reduce(0) { $0 + $1.rows }) rows) x \(dims.count == 1 ? "\(dims[0])" : "dims \(dims.first!)-\(dims.last!)"), \(config.interaction.rawValue) interaction, "
                  + "\(job.trainer.model.parameters.count) MLP parameters; \(model.optimizer.rawValue) lr \(model.lr), batch \(training.batchSize)"
                  + (world.size > 1 ? " (\(training.batchSize / world.size) per rank on \(world.size) ranks)" : ""))
            print("data: \(source.description)")
            print("plan: \(planning.plan ?? placement.algorithm)" + (planning.planAlgo == nil ? "" : String(format: ", searched in %.3f s", searchSeconds))
                  + ", " + placement.summary(tables: specs))
            for note in hardwareNotes { print(note) }
            if let refinement { print(refinement) }
            if planning.planAlgo != nil, let predicted, let prediction {
                print(PlanReport.table(placement, task: task, predicted: predicted, predictedBy: prediction.source, measured: nil))
                print(PlanReport.tables(placement, task: task, predictor: prediction.model))
                planVersusHeuristics = try PlanReport.versusHeuristics(placement, task: task, predictor: prediction.model, source: prediction.source,
                                                                        communication: planning.planModels.communication(), seed: training.seed)
                print(planVersusHeuristics!)
            }
        }
        let sink = try root ? outputs.metrics.map { try MetricsSink(path: $0) } : nil
        try sink?.write(RunConfiguration(self, ranks: world.size, extra: PlanRecord(plan: placement, predicted: predicted,
                                                                                   predictedBy: prediction?.source)))
        let live = root && JobReport.printsToTerminal
        let summary = try job.run { event in
            switch event {
            case .resumed(let path, let step, let skipped):
                guard root else { break }
                for (damaged, problem) in skipped { JobReport.warning("\(damaged): damaged checkpoint, passed over (\(problem))") }
                print("resumed from \(path) at step \(step)"
                      + (step >= training.steps ? "; --steps \(training.steps) is already reached: nothing to train, evaluating the checkpoint" : ""))
            case .startedFresh(let directory):
                if root { print("no checkpoint in \(directory) yet: starting at step 0") }
            case .progress(let progress):
                let line = String(format: "step %6d/%d  loss %.5f  %8.0f samples/s  lr %.4g  ETA %.0f s", progress.step, training.steps, progress.loss,
                                  progress.samplesPerSecond, progress.learningRate, progress.etaSeconds)
                if live { print("\r" + line, terminator: progress.step == training.steps ? "\n" : "") } else if root { print(line) }
                if let phases = progress.ranks, world.size > 1 {
                    for (rank, p) in phases.enumerated() {
                        let forecast = predicted.map { cost in
                            String(format: "  (predicted: embedding %.2f, communication %.2f)",
                                   cost.ranks[rank].forward + cost.ranks[rank].backward, cost.ranks[rank].communication)
                        } ?? ""
                        print(String(format: "  rank %d: embedding %.2f ms (CPU %.2f)  communication %.2f ms  dense %.2f ms (CPU %.2f)  data %.2f ms per step",
                                     rank, p.embeddingMilliseconds, p.embeddingCPUMilliseconds, p.communicationMilliseconds,
                                     p.denseMilliseconds, p.denseCPUMilliseconds, p.dataMilliseconds) + forecast)
                    }
                }
                fflush(nil)  // progress reaches a log file or a pipe as it happens
                try sink?.write(TrainRecord(step: progress.step, loss: progress.loss, samplesPerSecond: progress.samplesPerSecond,
                                            learningRate: progress.learningRate, ranks: progress.ranks ?? []))
            case .lookups(let report):
                if live && report.step != training.steps { print() }
                print(LookupReportText(report, tables: config.tables.map(\.name)).lines.joined(separator: "\n"))
                try sink?.write(SketchRecord(report))
            case .replan(let decision):
                print(String(format: "replan at step %d from measured reuse: current plan %.2f ms, %@ plan %.2f ms predicted (%+.1f%%): %@",
                             decision.step, decision.current, decision.algorithm, decision.searched, 100 * (decision.searched / max(decision.current, 1e-12) - 1),
                             decision.adopted ? "resharding through a checkpoint" : "keeping the current plan"))
                if decision.adopted {
                    print("plan: \(decision.algorithm), " + decision.plan.summary(tables: specs))
                    predicted = prediction.flatMap { try? $0.model.cost(of: decision.plan, tables: specs) }
                }
            case .evaluation(let step, let metrics):
                if live && step != training.steps { print() }
                print(String(format: "eval  %6d  held-out %d samples: ", step, metrics.count) + Self.describe(metrics))
                try sink?.write(EvalRecord(step: step, metrics: metrics))
            }
        }
        if let trace = outputs.trace, root { print("wrote \(trace)") }
        if let summary {
            try sink?.write(FinalRecord(summary))
            if let ended = summary.dataEndedAtStep { print("the data ended after step \(ended) of \(training.steps) (read once); training stopped there") }
            if summary.stepsTrained == 0 {
                print("final: nothing trained; held-out " + Self.describe(summary.heldOut))
            } else {
                print(String(format: "final: train loss %.5f (last %d steps); held-out ", summary.trainLoss, summary.lastWindowSteps)
                      + Self.describe(summary.heldOut)
                      + String(format: "; %.0f samples/s training (%.2f s), data %.2f s apart", summary.samplesPerSecond, summary.trainSeconds,
                               summary.dataSeconds)
                      + " (data wait " + (summary.dataShareByRank.count > 1 ? "per rank " : "")
                      + summary.dataShareByRank.map { String(format: "%.1f%%", 100 * $0) }.joined(separator: ", ") + " of step time)"
                      + source.skippedSuffix
                      + (summary.skippedSteps > 0 ? "; \(summary.skippedSteps) steps skipped for a non-finite loss" : ""))
            }
            if let bytes = summary.bytesSentPerStep {
                print("bytes sent per training step, all ranks: " + bytes.map { "\($0.kind) \(ByteCount($0.bytes))" }.joined(separator: ", "))
            }
            if let planVersusHeuristics { print(planVersusHeuristics) }
        }
    }

    /// The job's settings from the flags.
    func settings(adaptiveDeadline: JobDeadline.Adaptive? = nil) throws -> DLRMJob.Settings {
        var settings = DLRMJob.Settings(steps: training.steps, batchSize: training.batchSize, schedule: model.schedule, seed: training.seed)
        settings.embeddingOptimizer = model.embeddingOptimizer
        settings.denseOptimizer = model.optimizer
        settings.threads = configureThreads(training.threads)
        settings.reportEvery = outputs.printEvery
        settings.evalEvery = training.evalEvery
        settings.evalSamples = training.evalSamples
        settings.checkpointDirectory = checkpoints.checkpointDir
        settings.checkpointEvery = checkpoints.checkpointEvery
        settings.resume = checkpoints.resume ?? .never
        settings.keepCheckpoints = checkpoints.keepCheckpoints
        settings.trace = outputs.trace
        settings.replanEvery = planning.replanEvery
        settings.replanGain = planning.replanGain
        settings.nonFiniteLoss = training.nanPolicy
        settings.adaptiveDeadline = adaptiveDeadline
        if measurement.sketchEvery > 0 {
            var audit = DLRMJob.LookupAudit(every: measurement.sketchEvery)
            audit.auditedFraction = measurement.sketchSample
            audit.hotThreshold = measurement.hotThreshold
            audit.topK = measurement.topK
            audit.auditWidth = measurement.auditWidth
            audit.hotWidth = measurement.hotWidth
            audit.faults = try measurement.injectFaults.map { try LookupFaults(parsing: $0) }
            settings.audit = audit
        }
        return settings
    }

    /// The coordinator's re-planner: `--plan-algo` (NeuroShard by default) and its predictor.
    func replanning() throws -> DLRMJob.Replanning {
        let communication = try planning.planModels.communication()
        let algorithm = planning.planAlgo ?? "neuroshard"
        return DLRMJob.Replanning(
            planner: try PlannerCatalog.planner(named: algorithm, seed: training.seed, communication: communication, models: planning.planModels.learned),
            predictor: try PlanReport.predictor(planning.planModels, batch: training.batchSize, communication: communication, planner: algorithm,
                                                optimizer: model.embeddingOptimizer).model)
    }

    /// The tables to train, as the planners see them and the synthetic clicks draw them: the
    /// `--tables` file, or `t0, t1, ...` from `--arch-embedding-size` and the synthetic data
    /// flags (Criteo's hashed features taken as one uniform lookup each).
    func tableSpecs() throws -> [TableSpec] {
        if let tables = input.tables {
            let specs = try TableSpecFile.read(tables)
            if input.data.format != nil, specs.count != CriteoTSVReader.categoricalFeatures {
                throw CommandError("\(tables): \(specs.count) tables; --data \(input.data.rawValue) has \(CriteoTSVReader.categoricalFeatures) categorical features")
            }
            return specs
        }
        let synthetic = input.data == .synthetic
        // A preprocessed dataset's rows are fixed by its preprocessing.
        let preprocessed = try input.data == .criteoBinary && model.archEmbeddingSize == nil && input.dataPath.count == 1
            ? CriteoBinary.header(input.dataPath[0]).tableRows : nil
        // One size for Criteo data is every table's, as `data preprocess` takes it.
        let given = try model.archEmbeddingSize.map { try DLRMConfig.parseSizes($0, name: "--arch-embedding-size") }
            .map { !synthetic && $0.count == 1 ? [Int](repeating: $0[0], count: CriteoTSVReader.categoricalFeatures) : $0 }
        let rows = given ?? preprocessed
            ?? [Int](repeating: synthetic ? 10_000 : 100_000, count: synthetic ? 8 : CriteoTSVReader.categoricalFeatures)
        guard model.archSparseFeatureSize > 0 else { throw ConfigError("--arch-sparse-feature-size must be positive") }
        return try rows.enumerated().map { t, rows throws(PlanError) in
            var spec = try TableSpec(name: "t\(t)", rows: rows, dim: model.archSparseFeatureSize,
                                     poolingFactor: synthetic ? Double(input.numIndicesPerLookup ?? 1) : 1,
                                     distribution: synthetic ? input.indexDistribution ?? .uniform : .uniform)
            spec.bagSizes = synthetic && input.randomPooling ? .random : .fixed
            return spec
        }
    }

    static func describe(_ m: BinaryMetrics) -> String {
        String(format: "loss %.5f  AUC %@  accuracy %.4f  NE %@", m.loss, m.auc.map { String(format: "%.4f", $0) } ?? "n/a",
               m.accuracy, m.normalizedEntropy.map { String(format: "%.4f", $0) } ?? "n/a")
    }

    func makeSource(_ config: DLRMConfig, specs: [TableSpec], world: Communicator) throws -> ClickSource {
        guard let format = input.data.format else {
            return .synthetic(try SyntheticClicks(config: config, traffic: specs.map(\.traffic), seed: training.seed), specs: input.tables)
        }
        guard config.denseFeatures == CriteoTSVReader.denseFeatures else {
            throw CommandError("--data \(input.data.rawValue) has 13 dense features; --arch-mlp-bot starts with \(config.denseFeatures)")
        }
        let inputs = try DataInputs(input.dataPath)
        let testInputs = input.testFiles.isEmpty ? nil : try DataInputs(input.testFiles)
        if world.size > 1, inputs.readsOnce || testInputs?.readsOnce == true {
            throw CommandError("standard input and pipes are read by one process, and under mpirun standard input reaches only rank 0: "
                               + "give files to \(world.size) ranks, or write the data once with `mpitrain data preprocess --data-path - --out DIR` "
                               + "and train on --data criteo-bin")
        }
        let every = input.holdoutEvery ?? (testInputs == nil ? 10 : 0)
        let holdOut: ClickFiles.HoldOut = testInputs.map { .inputs($0) } ?? (every > 0 ? .every(every) : .none)
        let warnings = world.isRoot ? SkipWarnings() : nil
        let files = try ClickFiles(format: format, inputs: inputs, tableRows: config.tables.map(\.rows), onBadRow: input.onBadRow, holdOut: holdOut,
                                   heldOutLimit: training.evalSamples, slice: SampleSlice(rank: world.rank, ranks: world.size), batchSize: training.batchSize,
                                   onSkip: { warnings?.report($0) })
        return .files(files)
    }

    /// Checks every output path before the first step.
    func checkOutputs() throws {
        if let metrics = outputs.metrics { try OutputPaths.checkFile(metrics, "metrics file") }
        if let trace = outputs.trace { try OutputPaths.checkFile(trace, "trace") }
        if let directory = checkpoints.checkpointDir { try OutputPaths.checkDirectory(directory, "checkpoint directory") }
    }
}

private struct TrainRecord: Encodable {
    let kind = "train"
    let step: Int
    let loss: Double
    let samplesPerSecond: Double
    let learningRate: Float
    let ranks: [RankPhases]
}

private struct EvalRecord: Encodable {
    let kind = "eval"
    let step: Int
    let metrics: BinaryMetrics
}

/// The plan a run trained on and, when a cost model was at hand, its predicted cost per rank.
private struct PlanRecord: Encodable {
    let plan: ShardingPlan
    let predicted: PlanCost?
    let predictedBy: String?
}

/// The run's end: what `final:` prints.
private struct FinalRecord: Encodable {
    let kind = "final"
    let stepsTrained: Int
    let trainLoss: Double
    let heldOut: BinaryMetrics
    let samplesPerSecond: Double
    let trainSeconds: Double
    let dataShareByRank: [Double]
    let dataEndedAtStep: Int?
    let skippedSteps: Int

    init(_ summary: DLRMJob.Summary) {
        stepsTrained = summary.stepsTrained
        trainLoss = summary.trainLoss
        heldOut = summary.heldOut
        samplesPerSecond = summary.samplesPerSecond
        trainSeconds = summary.trainSeconds
        dataShareByRank = summary.dataShareByRank
        dataEndedAtStep = summary.dataEndedAtStep
        skippedSteps = summary.skippedSteps
    }
}

/// The flags of `dlrm`, grouped under titles in its help.
extension DLRMCommand {
    struct DataOptions: ParsableArguments {
        @Option(help: "synthetic (labels from a random teacher DLRM), criteo (TSV or gzip files, see --data-path) or criteo-bin (a directory from `mpitrain data preprocess`).")
        var data: DataSource = .synthetic

        @Option(parsing: .upToNextOption,
                help: "criteo: files, globs ('day_*.gz', in natural order) or - (standard input, read once) in the Kaggle train.txt / Terabyte day_N layout, plain or gzip; criteo-bin: the preprocessed directory.")
        var dataPath: [String] = []

        @Option(parsing: .upToNextOption, help: "criteo, criteo-bin: evaluate on the first --eval-samples samples of these inputs (e.g. the last day), as the reference splits by day.")
        var testFiles: [String] = []

        @Option(help: "criteo, criteo-bin: fail on a malformed row, or skip it with a warning.")
        var onBadRow: BadRowPolicy = .fail

        @Option(help: "criteo, criteo-bin: hold out every N-th sample for evaluation (0: none; default 10, or 0 with --test-files).")
        var holdoutEvery: Int?

        @Option(help: "Table specs (JSON, as `plan` and `tables` read and write): train exactly these tables, each with its own rows, dim, pooling, bag sizes and index distribution or reuse bins.")
        var tables: String?

        @Option(help: "synthetic: indices per bag of every table (with --random-pooling, uniform in 0...2N; default 1).")
        var numIndicesPerLookup: Int?

        @Flag(help: "synthetic: draw each bag's size instead of fixing it.")
        var randomPooling = false

        @Option(help: "synthetic: uniform or zipf:S for every table (default uniform).")
        var indexDistribution: IndexDistribution?
    }

    struct PlanOptions: ParsableArguments {
        @Option(help: "Place the embedding tables by this plan (JSON from `mpitrain plan --out`).")
        var plan: String?

        @Option(help: "Search the plan on the coordinator with this planner: \(PlannerCatalog.names.joined(separator: ", ")).")
        var planAlgo: String?

        @Option(help: "With --plan-algo: refine the searched plan on the coordinator with up to N cost-oracle measurements (concurrent conditions), each move kept only when the oracle confirms it (0: off).")
        var planRefine = 0

        @Option(help: "Embedding memory per rank the plan must fit, e.g. 2GiB (default: no limit).")
        var memory: String?

        @OptionGroup var planModels: PlanCommand.ModelOptions

        @OptionGroup var shardingTypes: PlanCommand.ShardingTypeOptions

        @Option(help: "Every N steps, re-plan from the measured reuse bins and reshard through --checkpoint-dir when it pays (0: never).")
        var replanEvery = 0

        @Option(help: "Predicted fraction of step cost a new plan must save to be adopted by --replan-every.")
        var replanGain = 0.05
    }

    struct TrainingOptions: ParsableArguments {
        @Option(help: "Samples per step.")
        var batchSize = 512

        @Option(help: "Training steps.")
        var steps = 1000

        @Option(help: "Evaluate on the held-out samples every N steps (0: only at the end).")
        var evalEvery = 0

        @Option(help: "synthetic: held-out samples; criteo: at most this many held-out lines.")
        var evalSamples = 16384

        @Option(help: "Threads for BLAS and the embedding kernels (default: OPENBLAS_NUM_THREADS, else 1).")
        var threads: Int?

        @Option(help: "Seed of the weights and the synthetic data.")
        var seed: UInt64 = 0

        @Option(help: "A step whose loss is NaN or infinite: stop the run there, or skip its batch and go on (its update is never applied).")
        var nanPolicy: DLRMJob.NonFiniteLossPolicy = .stop

        @OptionGroup var deadline: DeadlineOptions
    }

    struct OutputOptions: ParsableArguments {
        @Option(help: "Report progress every N steps.")
        var printEvery = 100

        @Option(help: "Write one JSON line per report here.")
        var metrics: String?

        @Option(help: "Write a Chrome/Perfetto trace of every rank's phases here (open in ui.perfetto.dev).")
        var trace: String?
    }

    struct CheckpointOptions: ParsableArguments {
        @Option(help: "Save checkpoints here (step-N/ per checkpoint; visible to every rank).")
        var checkpointDir: String?

        @Option(help: "Save a checkpoint every N steps (0: only at the end).")
        var checkpointEvery = 0

        @Option(defaultAsFlag: DLRMJob.ResumePolicy.always, parsing: .next,
                help: "Resume from the newest intact checkpoint in --checkpoint-dir (any plan or rank count); `--resume auto` starts fresh when there is none yet, as a requeued job wants.")
        var resume: DLRMJob.ResumePolicy?

        @Option(help: "Keep only the newest K complete checkpoints in --checkpoint-dir, removing older ones after each save (0: keep all).")
        var keepCheckpoints = 0
    }

    struct MeasurementOptions: ParsableArguments {
        @Option(help: "Sketch every lookup request; every N steps report lost and duplicated requests, hot rows and reuse bins (0: off).")
        var sketchEvery = 0

        @Option(help: "Fraction of lookup-request keys audited for loss and duplication (a seeded sample; 1: all).")
        var sketchSample = 1.0

        @Option(help: "Lookups of a row within a sketch window that make it hot.")
        var hotThreshold = 32

        @Option(help: "Hot rows to print per table.")
        var topK = 5

        @Option(help: "Buckets per array of the lost/duplicated-request sketch (decodes about 2.4 x this many differing requests).")
        var auditWidth = 4096

        @Option(help: "Buckets per array of the hot-row sketch.")
        var hotWidth = 4096

        @Option(help: "Drop or duplicate a deterministic set of lookup requests: drop=RATE,dup=RATE,seed=S (needs --sketch-every).")
        var injectFaults: String?
    }
}
