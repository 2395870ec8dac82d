import ArgumentParser
import Distributed
import Foundation
import Models
import Sharding

/// `mpitrain dlrm`: trains a DLRM on synthetic clicks or Criteo TSV data.
struct DLRMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlrm",
        abstract: "Train a DLRM on synthetic clicks or a Criteo TSV file.")

    @OptionGroup var model: DLRMModelOptions

    /// Where samples come from.
    enum DataSource: String, CaseIterable, ExpressibleByArgument { case synthetic, criteo }

    @Option(help: "synthetic (labels from a random teacher DLRM) or criteo (TSV, see --data-path).")
    var data: DataSource = .synthetic

    @Option(help: "criteo: the TSV file (Kaggle train.txt / Terabyte day_N layout).")
    var dataPath: String?

    @Option(help: "criteo: fail on a malformed row, or skip it with a warning.")
    var onBadRow: BadRowPolicy = .fail

    @Option(help: "criteo: hold out every N-th line for evaluation (0: none).")
    var holdoutEvery = 10

    @Option(help: "Table specs (JSON, as `plan` and `tables` read and write): train exactly these tables, each with its own rows, dim, pooling, bag sizes and index distribution or reuse bins.")
    var tables: String?

    @Option(help: "synthetic: indices per bag of every table (with --random-pooling, uniform in 0...2N; default 1).")
    var numIndicesPerLookup: Int?

    @Flag(help: "synthetic: draw each bag's size instead of fixing it.")
    var randomPooling = false

    @Option(help: "synthetic: uniform or zipf:S for every table (default uniform).")
    var indexDistribution: IndexDistribution?

    @Option(help: "Place the embedding tables by this plan (JSON from `mpitrain plan --out`).")
    var plan: String?

    @Option(help: "Search the plan on the coordinator with this planner: \(PlannerCatalog.names.joined(separator: ", ")).")
    var planAlgo: String?

    @Option(help: "Embedding memory per rank the plan must fit, e.g. 2GiB (default: no limit).")
    var memory: String?

    @OptionGroup var planModels: PlanCommand.ModelOptions
    @OptionGroup var shardingTypes: PlanCommand.ShardingTypeOptions

    @Option(help: "Samples per step.")
    var batchSize = 512

    @Option(help: "Training steps.")
    var steps = 1000

    @Option(help: "Evaluate on the held-out samples every N steps (0: only at the end).")
    var evalEvery = 0

    @Option(help: "synthetic: held-out samples; criteo: at most this many held-out lines.")
    var evalSamples = 16384

    @Option(help: "Report progress every N steps.")
    var printEvery = 100

    @Option(help: "Threads for BLAS and the embedding kernels (default: OPENBLAS_NUM_THREADS, else 1).")
    var threads: Int?

    @Option(help: "Seed of the weights and the synthetic data.")
    var seed: UInt64 = 0

    @Option(help: "Write one JSON line per report here.")
    var metrics: String?

    @Option(help: "Write a Chrome/Perfetto trace of every rank's phases here (open in ui.perfetto.dev).")
    var trace: String?

    @Option(help: "Save checkpoints here (step-N/ per checkpoint; visible to every rank).")
    var checkpointDir: String?

    @Option(help: "Save a checkpoint every N steps (0: only at the end).")
    var checkpointEvery = 0

    @Flag(help: "Resume from the newest complete checkpoint in --checkpoint-dir (any plan or rank count).")
    var resume = false

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

    @Option(help: "Every N steps, re-plan from the measured reuse bins and reshard through --checkpoint-dir when it pays (0: never).")
    var replanEvery = 0

    @Option(help: "Predicted fraction of step cost a new plan must save to be adopted by --replan-every.")
    var replanGain = 0.05

    func validate() throws {
        guard steps >= 1, batchSize >= 1, (threads ?? 1) >= 1, printEvery >= 1, evalEvery >= 0, evalSamples >= 1, (numIndicesPerLookup ?? 0) >= 0, holdoutEvery >= 0 else {
            throw ValidationError("--steps, --batch-size, --print-every and --eval-samples must be at least 1; counts at least 0")
        }
        if tables != nil, model.archEmbeddingSize != nil || numIndicesPerLookup != nil || randomPooling || indexDistribution != nil {
            throw ValidationError("--tables gives every table's rows, dim, pooling, bag sizes and distribution; drop --arch-embedding-size, --num-indices-per-lookup, --random-pooling and --index-distribution")
        }
        if data == .criteo && dataPath == nil { throw ValidationError("--data criteo needs --data-path") }
        if plan != nil && planAlgo != nil { throw ValidationError("--plan and --plan-algo exclude each other") }
        if (resume || checkpointEvery > 0) && checkpointDir == nil { throw ValidationError("--resume and --checkpoint-every need --checkpoint-dir") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be at least 0") }
        guard sketchEvery >= 0, topK >= 0 else { throw ValidationError("--sketch-every and --top-k must be at least 0") }
        if injectFaults != nil && sketchEvery == 0 { throw ValidationError("--inject-faults needs --sketch-every") }
        if replanEvery > 0 && (sketchEvery == 0 || replanEvery % sketchEvery != 0 || checkpointDir == nil) {
            throw ValidationError("--replan-every needs --checkpoint-dir and --sketch-every dividing it")
        }
        guard replanEvery >= 0 else { throw ValidationError("--replan-every must be at least 0") }
    }

    func run() throws {
        let world = try MPIRuntime.world()
        guard batchSize % world.size == 0 else {
            throw ConfigError("--batch-size \(batchSize) does not split evenly over \(world.size) ranks")
        }
        let specs = try tableSpecs()
        let config = try model.config(tables: specs.map(\.embedding))
        let source = try makeSource(config, specs: specs)
        let memoryPerRank = try memory.map { text throws(PlanError) in try ByteCount(parsing: text).bytes }
        let task = PlanningTask(tables: specs, ranks: world.size,
                                memoryPerRank: memoryPerRank ?? specs.reduce(0) { $0 + $1.bytes(columns: $1.dim, optimizer: model.embeddingOptimizer) },
                                batchSize: batchSize, optimizer: model.embeddingOptimizer, dataParallelBytes: try shardingTypes.dataParallelBytes())
        var searchSeconds = 0.0
        var placement = try world.coordinatePlan(tables: specs, memoryPerRank: memoryPerRank, optimizer: model.embeddingOptimizer) {
            if let plan { return try ShardingPlan.read(plan) }
            guard let planAlgo else { return ShardingPlan.roundRobin(specs, ranks: world.size) }
            let planner = try PlannerCatalog.planner(named: planAlgo, seed: seed, communication: try planModels.communication(),
                                                     models: planModels.learned)
            let start = ContinuousClock.now
            defer { searchSeconds = (ContinuousClock.now - start).seconds }
            return try planner.plan(task)
        }
        // The coordinator's prediction of each rank's embedding and communication time, and its source.
        let prediction = world.isRoot ? (try? planModels.communication()).flatMap { communication in
            try? PlanReport.predictor(planModels, batch: batchSize, communication: communication, planner: planAlgo,
                                      optimizer: model.embeddingOptimizer)
        } : nil
        var predicted = prediction.flatMap { try? $0.model.cost(of: placement, tables: specs) }
        var trainer = try ShardedDLRM(world: world, config: config, shardsByRank: placement.shardsByRank(tables: specs),
                                      replicatedTables: placement.replicatedTables(tables: specs), embeddingOptimizer: model.embeddingOptimizer,
                                      denseOptimizer: model.optimizer, seed: seed, trace: trace != nil)
        trainer.embeddingThreads = configureThreads(threads)
        if sketchEvery > 0 { trainer.monitor = try makeMonitor(for: trainer, config: config) }
        let root = world.rank == 0
        var planVersusHeuristics: String?
        if root {
            let dims = Set(config.tables.map(\.dim)).sorted()
            print("model: bottom \(model.archMlpBot), top \(config.interactionWidth)-\(model.archMlpTop), \(config.tables.count) tables "
                  + "(\(config.tables.reduce(0) { $0 + $1.rows }) rows) x \(dims.count == 1 ? "\(dims[0])" : "dims \(dims.first!)-\(dims.last!)"), \(config.interaction.rawValue) interaction, "
                  + "\(trainer.model.parameters.count) MLP parameters; \(model.optimizer.rawValue) lr \(model.lr), batch \(batchSize)"
                  + (world.size > 1 ? " (\(batchSize / world.size) per rank on \(world.size) ranks)" : ""))
            print("data: \(source.description)")
            print("plan: \(plan ?? placement.algorithm)" + (planAlgo == nil ? "" : String(format: ", searched in %.3f s", searchSeconds))
                  + ", " + placement.summary(tables: specs))
            if planAlgo != nil, let predicted, let prediction {
                print(PlanReport.table(placement, task: task, predicted: predicted, predictedBy: prediction.source, measured: nil))
                print(PlanReport.tables(placement, task: task, predictor: prediction.model))
                planVersusHeuristics = try PlanReport.versusHeuristics(placement, task: task, predictor: prediction.model, source: prediction.source,
                                                                        communication: planModels.communication(), seed: seed)
                print(planVersusHeuristics!)
            }
        }
        var firstStep = 0
        if resume, let checkpointDir {
            guard let newest = DLRMCheckpoint.newest(in: checkpointDir) else {
                throw ConfigError("\(checkpointDir): no complete checkpoint to resume from")
            }
            firstStep = try DLRMCheckpoint.load(into: trainer, from: newest.path)
            try source.skip(steps: firstStep, size: batchSize)
            if root { print("resumed from \(newest.path) at step \(firstStep)") }
        }
        let sink = try root ? metrics.map { try MetricsSink(path: $0) } : nil
        let live = root && JobReport.printsToTerminal
        var trainSeconds = 0.0, dataSeconds = 0.0
        var trainTraffic = TrafficReport()
        var windowLoss = 0.0, windowSteps = 0, lastWindowLoss = 0.0, lastWindowSteps = 0
        var heldOut: ClickBatch?
        var lastReport: LookupReport?
        let local = batchSize / world.size
        for step in firstStep..<max(steps, firstStep) {
            var start = ContinuousClock.now
            let batch = try source.next(step: step, size: batchSize, slice: world.rank * local ..< (world.rank + 1) * local)
            dataSeconds += (ContinuousClock.now - start).seconds
            start = ContinuousClock.now
            trainer.monitor?.begin(step: step)
            let trafficBefore = world.traffic()
            windowLoss += try trainer.trainStep(batch, learningRate: model.schedule.rate(at: step))
            trainTraffic = trainTraffic + (world.traffic() - trafficBefore)
            trainSeconds += (ContinuousClock.now - start).seconds
            windowSteps += 1
            let done = step + 1
            if done % printEvery == 0 || done == steps {
                lastWindowLoss = windowLoss / Double(windowSteps)
                lastWindowSteps = windowSteps
                let rate = Double((done - firstStep) * batchSize) / max(trainSeconds, 1e-9)
                let eta = Double(steps - done) * (trainSeconds + dataSeconds) / Double(done - firstStep)
                let line = String(format: "step %6d/%d  loss %.5f  %8.0f samples/s  lr %.4g  ETA %.0f s", done, steps, lastWindowLoss,
                                  rate, model.schedule.rate(at: step), eta)
                if live { print("\r" + line, terminator: done == steps ? "\n" : "") } else if root { print(line) }
                fflush(nil)  // progress reaches a log file or a pipe as it happens
                let phases = try Self.gatherPhases(trainer, steps: windowSteps)
                if let phases, world.size > 1 {
                    for (rank, p) in phases.enumerated() {
                        let forecast = predicted.map { cost in
                            String(format: "  (predicted: embedding %.2f, communication %.2f)",
                                   cost.ranks[rank].forward + cost.ranks[rank].backward, cost.ranks[rank].communication)
                        } ?? ""
                        print(String(format: "  rank %d: embedding %.2f ms  communication %.2f ms  dense %.2f ms per step",
                                     rank, p.embeddingMilliseconds, p.communicationMilliseconds, p.denseMilliseconds) + forecast)
                    }
                }
                try sink?.write(TrainRecord(step: done, loss: lastWindowLoss, samplesPerSecond: rate, learningRate: model.schedule.rate(at: step),
                                            ranks: phases ?? []))
                windowLoss = 0
                windowSteps = 0
            }
            if let monitor = trainer.monitor, monitor.reportsAfter(step: step) {
                start = ContinuousClock.now
                let report = try monitor.report(world: world, topK: topK)
                trainSeconds += (ContinuousClock.now - start).seconds
                lastReport = report
                if let report {
                    if live && done != steps { print() }
                    print(LookupReportText(report, tables: config.tables.map(\.name)).lines.joined(separator: "\n"))
                    try sink?.write(SketchRecord(report))
                }
            }
            if let checkpointDir, (checkpointEvery > 0 && done % checkpointEvery == 0) || done == steps {
                try DLRMCheckpoint.save(trainer, step: done, directory: checkpointDir)
            }
            if replanEvery > 0, done % replanEvery == 0, done < steps, let checkpointDir {
                let next = try replan(world: world, current: placement, specs: specs, measured: lastReport, task: task,
                                      memoryPerRank: memoryPerRank, step: done)
                if next != placement {
                    trainer = try reshard(trainer, to: next, specs: specs, config: config, step: done, directory: checkpointDir)
                    placement = next
                    predicted = prediction.flatMap { try? $0.model.cost(of: placement, tables: specs) }
                }
            }
            if (evalEvery > 0 && done % evalEvery == 0) || done == steps {
                if heldOut == nil { heldOut = source.heldOut(count: evalSamples) }
                let metrics = try Self.evaluate(trainer, heldOut!, batchSize: max(batchSize, 4096))
                if let metrics {
                    if live && done != steps { print() }
                    print(String(format: "eval  %6d  held-out %d samples: ", done, metrics.count) + Self.describe(metrics))
                    try sink?.write(EvalRecord(step: done, metrics: metrics))
                }
            }
        }
        if let trace {
            try trainer.trace.write(to: trace, comm: world, process: "mpitrain dlrm on \(world.size) ranks")
            if root { print("wrote \(trace)") }
        }
        let summedTraffic = world.size > 1 ? try world.reduce(trainTraffic) : nil
        if let final = try Self.evaluate(trainer, heldOut ?? source.heldOut(count: evalSamples), batchSize: max(batchSize, 4096)) {
            print(String(format: "final: train loss %.5f (last %d steps); held-out ", lastWindowLoss, lastWindowSteps) + Self.describe(final)
                  + String(format: "; %.0f samples/s training (%.2f s), data %.2f s apart", Double(max(steps - firstStep, 0) * batchSize) / max(trainSeconds, 1e-9),
                           trainSeconds, dataSeconds)
                  + source.skippedSuffix)
            if let summedTraffic, steps > firstStep {
                let kinds = TrafficKind.allCases.filter { summedTraffic[$0].bytesSent > 0 }
                print("bytes sent per training step, all ranks: " + kinds.map { kind in
                    "\(kind) \(ByteCount(Int(summedTraffic[kind].bytesSent) / (steps - firstStep)))"
                }.joined(separator: ", "))
            }
            if let planVersusHeuristics { print(planVersusHeuristics) }
        }
    }

    /// Every rank's mean phase times per step since the last report, on rank 0 (nil elsewhere).
    static func gatherPhases(_ trainer: ShardedDLRM, steps: Int) throws -> [RankPhases]? {
        let p = trainer.phaseSeconds, scale = 1000 / Double(max(steps, 1))
        trainer.resetPhaseSeconds()
        guard let all = try trainer.world.gatherv([p.embedding * scale, p.communication * scale, p.dense * scale], root: 0) else { return nil }
        return (0..<trainer.world.size).map { r in
            RankPhases(embeddingMilliseconds: all.values[3 * r], communicationMilliseconds: all.values[3 * r + 1], denseMilliseconds: all.values[3 * r + 2])
        }
    }

    /// The tables to train, as the planners see them and the synthetic clicks draw them: the
    /// `--tables` file, or `t0, t1, ...` from `--arch-embedding-size` and the synthetic data
    /// flags (Criteo's hashed features taken as one uniform lookup each).
    func tableSpecs() throws -> [TableSpec] {
        if let tables {
            let specs = try TableSpecFile.read(tables)
            if data == .criteo, specs.count != CriteoTSVReader.categoricalFeatures {
                throw CommandError("\(tables): \(specs.count) tables; --data criteo has \(CriteoTSVReader.categoricalFeatures) categorical features")
            }
            return specs
        }
        let synthetic = data == .synthetic
        let rows = try model.archEmbeddingSize.map { try DLRMConfig.parseSizes($0, name: "--arch-embedding-size") }
            ?? [Int](repeating: synthetic ? 10_000 : 100_000, count: synthetic ? 8 : CriteoTSVReader.categoricalFeatures)
        guard model.archSparseFeatureSize > 0 else { throw ConfigError("--arch-sparse-feature-size must be positive") }
        return try rows.enumerated().map { t, rows throws(PlanError) in
            var spec = try TableSpec(name: "t\(t)", rows: rows, dim: model.archSparseFeatureSize,
                                     poolingFactor: synthetic ? Double(numIndicesPerLookup ?? 1) : 1,
                                     distribution: synthetic ? indexDistribution ?? .uniform : .uniform)
            spec.bagSizes = synthetic && randomPooling ? .random : .fixed
            return spec
        }
    }

    /// Metrics of `batch`'s predictions on rank 0 (nil elsewhere): every rank predicts its share
    /// of each slice of `batchSize` samples; the logits are gathered in sample order.
    static func evaluate(_ trainer: ShardedDLRM, _ batch: ClickBatch, batchSize: Int) throws -> BinaryMetrics? {
        let ranks = trainer.world.size, rank = trainer.world.rank
        var logits: [Float] = []
        let usable = batch.count / ranks * ranks
        for start in stride(from: 0, to: usable, by: batchSize) {
            let share = (min(start + batchSize, usable) - start) / ranks
            let mine = try trainer.predict(batch.samples(start + rank * share ..< start + (rank + 1) * share))
            if let gathered = try trainer.world.gatherv(mine, root: 0) { logits += gathered.values }
        }
        return rank == 0 ? BinaryMetrics(logits: logits, labels: Array(batch.labels[0..<usable])) : nil
    }

    static func describe(_ m: BinaryMetrics) -> String {
        String(format: "loss %.5f  AUC %@  accuracy %.4f  NE %@", m.loss, m.auc.map { String(format: "%.4f", $0) } ?? "n/a",
               m.accuracy, m.normalizedEntropy.map { String(format: "%.4f", $0) } ?? "n/a")
    }

    func makeSource(_ config: DLRMConfig, specs: [TableSpec]) throws -> ClickSource {
        switch data {
        case .synthetic:
            return .synthetic(try SyntheticClicks(config: config, traffic: specs.map(\.traffic), seed: seed), specs: tables)
        case .criteo:
            let reader = try CriteoTSVReader(path: dataPath!, tableRows: config.tables.map(\.rows), onBadRow: onBadRow,
                                             holdoutEvery: holdoutEvery, holdoutLimit: evalSamples)
            guard config.denseFeatures == CriteoTSVReader.denseFeatures else {
                throw CommandError("--data criteo has 13 dense features; --arch-mlp-bot starts with \(config.denseFeatures)")
            }
            var warned = 0
            reader.onSkip = { error in
                warned += 1
                if warned <= 10 { FileHandle.standardError.write(Data("mpitrain: warning: skipped \(error)\n".utf8)) }
            }
            return .criteo(reader)
        }
    }
}

/// Training samples and held-out samples of one run.
enum ClickSource: CustomStringConvertible {
    /// Synthetic clicks, and the spec file their tables came from, if any.
    case synthetic(SyntheticClicks, specs: String?)
    case criteo(CriteoTSVReader)

    /// Samples `slice` of batch `step` of `size` samples. Every rank reads a Criteo batch
    /// whole and keeps its slice, so all ranks stay at the same place in the file.
    func next(step: Int, size: Int, slice: Range<Int>) throws -> ClickBatch {
        switch self {
        case .synthetic(let generator, _):
            return generator.batch(samples: step * size + slice.lowerBound ..< step * size + slice.upperBound)
        case .criteo(let reader):
            guard let batch = try reader.nextBatch(size: size) else {
                throw DatasetError(path: reader.path, line: 0, reason: "no training rows (every row held out or skipped)")
            }
            return slice == 0..<size ? batch : batch.samples(slice)
        }
    }

    /// Moves past the first `steps` batches, as a run resumed at that step must.
    func skip(steps: Int, size: Int) throws {
        guard case .criteo(let reader) = self else { return }
        for _ in 0..<steps { _ = try reader.nextBatch(size: size) }
    }

    func heldOut(count: Int) -> ClickBatch {
        switch self {
        case .synthetic(let generator, _): generator.heldOut(count: count)
        case .criteo(let reader): reader.heldOut
        }
    }

    var description: String {
        switch self {
        case .synthetic(let g, let specs):
            "synthetic clicks" + (specs.map { " of the tables in \(($0 as NSString).lastPathComponent)" } ?? "") + ", " + Self.describe(g.traffic) + ", teacher DLRM labels, seed \(g.seed)"
        case .criteo(let r):
            "\(r.path), every \(r.holdoutEvery)-th line held out"
        }
    }

    /// Pooling, bag sizes and row distributions of `traffic` in a few words.
    static func describe(_ traffic: [TableTraffic]) -> String {
        let pooling = traffic.map(\.poolingFactor)
        let (low, high) = (pooling.min() ?? 0, pooling.max() ?? 0)
        let poolingText = low == high ? "\(Self.number(low)) indices per bag" : "\(Self.number(low))-\(Self.number(high)) indices per bag"
        let bags = Set(traffic.map(\.bagSizes.rawValue)).sorted().joined(separator: "/")
        let exponents = traffic.compactMap { t -> Double? in if case .distribution(.zipf(let s)) = t.source { s } else { nil } }
        var kinds: [String] = []
        if traffic.contains(where: { $0.source == .distribution(.uniform) }) { kinds.append("uniform") }
        if let low = exponents.min(), let high = exponents.max() { kinds.append(low == high ? "zipf:\(low)" : "zipf:\(low)-\(high)") }
        if traffic.contains(where: { if case .groups = $0.source { true } else { false } }) { kinds.append("reuse bins") }
        let rows = kinds.joined(separator: ", ")
        return poolingText + (bags == "fixed" ? "" : " (\(bags))") + ", " + rows
    }

    private static func number(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value) }

    var skippedSuffix: String {
        if case .criteo(let reader) = self, reader.skippedRows > 0 { return "; \(reader.skippedRows) bad rows skipped" }
        return ""
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

/// One rank's mean time per step in each phase of training.
struct RankPhases: Encodable {
    let embeddingMilliseconds: Double
    let communicationMilliseconds: Double
    let denseMilliseconds: Double
}

private struct EvalRecord: Encodable {
    let kind = "eval"
    let step: Int
    let metrics: BinaryMetrics
}
