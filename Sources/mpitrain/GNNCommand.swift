import ArgumentParser
import Distributed
import Foundation
import Models

/// `mpitrain gnn`: full-graph GNN training on one rank, or across ranks by layer pipeline,
/// graph partitions, or both.
struct GNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gnn",
        abstract: "Train a deep GCN or GCNII on a graph, on one rank or pipelined/partitioned across ranks.")

    @Option(help: ArgumentHelp(
        "A graph directory, a shared data set by name (cora), or csbm for a generated contextual SBM.",
        discussion: "A directory is read by what it holds: LINQS (<name>.content, <name>.cites, optional <name>.split), "
            + "OGB node property prediction (raw/edge.csv, raw/node-feat.csv, raw/node-label.csv, optional raw/num-node-list.csv "
            + "and split/<name>/{train,valid,test}.csv, each plain or .gz) or NumPy (features.npy, labels.npy, edges.npy, "
            + "optional train.npy, valid.npy or val.npy, test.npy). Without a split, one is drawn from --seed: per class 60% train, "
            + "20% validation, 20% test."))
    var dataset: String

    @Option(help: "An edge naming a node the graph does not have: fail (with its file and line), or skip it and print how many.")
    var onBadEdge: BadRowPolicy = .fail

    @Option(help: "OGB directory with several split/<name>: the one to use.")
    var split: String?

    /// How ranks share the work.
    enum Mode: String, CaseIterable, ExpressibleByArgument {
        case single, pipeline, graph, hybrid
    }

    @Option(help: "single (one rank), pipeline (layers over ranks), graph (vertex partitions) or hybrid.")
    var mode: Mode = .single

    @Option(help: "hybrid: pipeline stages; each stage runs over ranks/stages graph partitions.")
    var stages: Int?

    @Option(help: "pipeline, hybrid: chunks per partition that flow through the pipeline (and the chunks --gradient-check pipelines).")
    var chunks: Int = 4

    @Option(help: ArgumentHelp(
        "single: every N epochs, compare the gradient a pipelined epoch over --chunks chunks would take with the exact one.",
        discussion: "Training stays exact, its nodes numbered by chunk as a pipeline numbers them; the check leaves its losses unchanged. Per layer, the cosine of the two gradients and the ratio of their "
            + "norms, with last epoch's rows for later chunks (as a pipeline reads them) and with this epoch's (the dropped gradients alone)."))
    var gradientCheck: Int?

    @Option(help: "pipeline, hybrid: chunk order each epoch: fixed or random.")
    var chunkOrder: DistributedGNNTrainer.ChunkOrder = .fixed

    @Option(help: "pipeline, hybrid: gradients through historical embeddings: dropped, or deferred to the next epoch (as PipeGCN).")
    var staleGradients: GNNStage.StaleGradients = .dropped

    @Option(help: "pipeline, hybrid: exact (unpipelined) epochs at the start.")
    var warmupEpochs: Int = 0

    /// `--stale-momentum` and `--refresh-every` when not given: together, the best measured on
    /// csbm-20k with an 8 x 128 GCN over 4 ranks at the default learning rate (README, gnn).
    static let defaultStaleMomentum: Float = 0.95
    static let defaultRefreshEvery = 10

    @Option(help: ArgumentHelp(
        "pipeline, hybrid: momentum of the moving averages that stand in for last epoch's embeddings and deferred gradients, in 0..<1 (default \(defaultStaleMomentum)).",
        discussion: "PipeGCN's smoothing: average = m * average + (1 - m) * last epoch's value, per layer, before each pipelined epoch. 0 uses last epoch's values as they are."))
    var staleMomentum: Float?

    @Option(help: "pipeline, hybrid: an exact (unpipelined) epoch every K epochs, from the first, refreshes the historical embeddings; 0 never (default \(defaultRefreshEvery)).")
    var refreshEvery: Int?

    @Option(help: "metis or contiguous: how partitions and chunks are cut.")
    var partitioner: GraphPartitioner = .metis

    @Option(help: "Write a Chrome/Perfetto trace of every rank's phases here (open in ui.perfetto.dev).")
    var trace: String?

    @OptionGroup var csbm: CSBMOptions
    @OptionGroup var deadline: DeadlineOptions

    @Option(help: "gcn or gcnii.")
    var model: GNNArchitecture = .gcn

    @Option(help: "Layers, including the input and output layers.")
    var layers: Int = 2

    @Option(help: "Hidden width.")
    var hidden: Int = 16

    @Option(help: "Dropout probability on every layer's input.")
    var dropout: Float = 0.5

    @Option(help: "Adam learning rate.")
    var lr: Float = 0.01

    @Option(help: "L2 weight decay (first layer only, as Kipf & Welling, unless --decay-all-layers).")
    var weightDecay: Float = 5e-4

    @Flag(help: "gcn: apply weight decay to every layer.")
    var decayAllLayers = false

    @Option(help: "gcnii: L2 weight decay of the convolutions' weights (default 0.01, as in GCNII's paper; its input and output layers take --weight-decay).")
    var convWeightDecay: Float?

    @Flag(inversion: .prefixedNo, help: "GCN hidden layers add their input (default: on for more than 2 layers).")
    var residual: Bool?

    @Option(help: "GCNII initial-residual weight α.")
    var alpha: Float = 0.1

    @Option(help: "GCNII identity-mapping λ (β_l = log(λ/l + 1)).")
    var lambda: Float = 0.5

    @Option(help: "Training epochs.")
    var epochs: Int = 200

    @Option(help: "Print a line every N epochs.")
    var printEvery: Int = 10

    @Option(help: "Seed for weights, dropout and generated data.")
    var seed: UInt64 = 0

    @Option(help: "Write one JSON line per epoch here.")
    var metrics: String?

    func validate() throws {
        guard epochs >= 1, printEvery >= 1 else { throw ValidationError("--epochs and --print-every must be at least 1") }
        guard chunks >= 1, warmupEpochs >= 0 else { throw ValidationError("--chunks must be at least 1 and --warmup-epochs at least 0") }
        if mode == .hybrid && stages == nil { throw ValidationError("--mode hybrid needs --stages") }
        if let stages, stages < 1 { throw ValidationError("--stages must be at least 1") }
        if stages != nil && mode != .hybrid { throw ValidationError("--stages goes with --mode hybrid") }
        if let staleMomentum, !(staleMomentum >= 0 && staleMomentum < 1) {
            throw ValidationError("--stale-momentum must be in 0..<1, not \(staleMomentum)")
        }
        if let refreshEvery, refreshEvery < 0 { throw ValidationError("--refresh-every must be at least 0, not \(refreshEvery)") }
        if mode == .single || mode == .graph, let flag = staleMomentum != nil ? "--stale-momentum" : refreshEvery != nil ? "--refresh-every" : nil {
            throw ValidationError("\(flag) acts on the historical embeddings of --mode pipeline or hybrid; --mode \(mode.rawValue) has none")
        }
        if let gradientCheck {
            guard gradientCheck >= 1 else { throw ValidationError("--gradient-check must be at least 1, not \(gradientCheck)") }
            guard mode == .single else { throw ValidationError("--gradient-check measures exact single-rank training; --mode \(mode.rawValue) trains pipelined or partitioned") }
            guard chunks >= 2 else { throw ValidationError("--gradient-check compares with a pipeline of --chunks chunks, at least 2, not \(chunks)") }
        }
        if trace != nil && mode == .single { throw ValidationError("--trace records the phases of --mode pipeline, graph or hybrid; --mode single has none") }
        try checkGNNShape(layers: [layers], hidden: hidden, chunks: chunks)
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in 0..<1, not \(dropout)") }
        guard lr.isFinite, lr > 0 else { throw ValidationError("--lr must be a positive number, not \(lr)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw ValidationError("--weight-decay must be a number at least 0, not \(weightDecay)") }
        if let convWeightDecay, !(convWeightDecay.isFinite && convWeightDecay >= 0) {
            throw ValidationError("--conv-weight-decay must be a number at least 0, not \(convWeightDecay)")
        }
        if model == .gcn && convWeightDecay != nil { throw ValidationError("--conv-weight-decay acts on --model gcnii's convolutions") }
        if model == .gcnii && decayAllLayers {
            throw ValidationError("--decay-all-layers acts on --model gcn; gcnii decays its input and output layers by --weight-decay and its convolutions by --conv-weight-decay")
        }
        guard alpha.isFinite, (0...1).contains(alpha) else { throw ValidationError("--alpha must be in 0...1, not \(alpha)") }
        guard lambda.isFinite, lambda > 0 else { throw ValidationError("--lambda must be a positive number, not \(lambda)") }
    }

    func run() throws {
        if let trace { try OutputPaths.checkFile(trace, "trace") }
        let (graph, notes) = try loadGraph()
        try checkGNNFits(graph, layers: layers, hidden: hidden)
        var config = GNNConfig(inputWidth: graph.featureCount, classes: graph.classCount)
        config.architecture = model
        config.layers = layers
        config.hidden = hidden
        config.dropout = dropout
        config.learningRate = lr
        config.weightDecay = weightDecay
        config.decayAllLayers = decayAllLayers
        if let convWeightDecay { config.convolutionWeightDecay = convWeightDecay }
        config.residual = residual ?? (layers > 2)
        config.alpha = alpha
        config.lambda = lambda
        config.seed = seed
        let adaptiveDeadline = deadline.apply()
        let world = try MPIRuntime.world()
        JobDeadline.stepName = "epoch"
        if world.size > 1 && mode == .single {
            throw ConfigError("--mode single runs on one rank; use --mode pipeline, graph or hybrid with \(world.size) ranks")
        }
        if world.isRoot {
            for note in notes { print(note) }
            print("graph: \(graph.nodeCount) nodes, \(graph.edgeCount) edges, \(graph.featureCount) features, \(graph.classCount) classes; "
                  + "\(graph.nodes(.train).count)/\(graph.nodes(.validation).count)/\(graph.nodes(.test).count) train/val/test")
            print("model: \(model.rawValue), \(layers) layers x \(hidden), dropout \(dropout), lr \(lr), weight decay \(weightDecay)"
                  + (model == .gcnii ? " (convolutions \(config.convolutionWeightDecay))" : ""))
        }
        let trainer: any GNNEpochTraining
        var distributed: DistributedGNNTrainer?
        var checked: GNNTrainer?
        if mode == .single {
            let single = try GNNTrainer(config: config, graph: graph, partitioner: partitioner, chunks: gradientCheck == nil ? 1 : chunks)
            if let gradientCheck {
                single.gradientCheckEvery = gradientCheck
                checked = single
                print("gradient check: exact training, every \(gradientCheck) epochs against a pipelined epoch over \(chunks) chunks; historical values: "
                      + String(format: "%.1f%% of neighbours", 100 * single.layout.historicalNeighbourShare(of: single.stage.graph))
                      + ", stale gradients dropped")
            }
            trainer = single
        } else {
            let stageCount = switch mode { case .pipeline: world.size; case .graph: 1; default: stages! }
            // Graph parallelism has no historical values to smooth or refresh.
            let historical = mode == .graph ? (momentum: 0, refreshEvery: 0)
                : (momentum: staleMomentum ?? Self.defaultStaleMomentum, refreshEvery: refreshEvery ?? Self.defaultRefreshEvery)
            let distributedTrainer = try DistributedGNNTrainer(
                config: config, graph: graph, world: world, stages: stageCount, chunks: mode == .graph ? 1 : chunks,
                partitioner: partitioner, staleGradients: staleGradients, staleMomentum: historical.momentum,
                trace: PhaseTrace(enabled: trace != nil))
            distributedTrainer.chunkOrder = chunkOrder
            distributedTrainer.warmupEpochs = warmupEpochs
            distributedTrainer.refreshEvery = historical.refreshEvery
            trainer = distributedTrainer
            distributed = distributedTrainer
            let halo = try world.gather([Int64(distributedTrainer.haloRows)], root: 0)
            if world.isRoot {
                let layout = distributedTrainer.layout
                print("layout: \(layout.stages) stage(s) x \(layout.partitions) partition(s), \(layout.chunks) chunk(s) per partition; "
                      + "layers per stage \(layout.stageLayers.map { "\($0.lowerBound)-\($0.upperBound - 1)" }.joined(separator: " "))"
                      + (layout.partitions > 1 ? "; halo rows per rank \(halo!.map(String.init).joined(separator: " "))" : ""))
                if layout.chunks > 1 {
                    print("historical values: " + String(format: "%.1f%% of neighbours", 100 * distributedTrainer.historicalNeighbourShare)
                          + ", stale gradients \(staleGradients.rawValue), momentum \(distributedTrainer.stage.staleMomentum), "
                          + (distributedTrainer.refreshEvery > 0 ? "an exact epoch every \(distributedTrainer.refreshEvery) epochs" : "no exact refresh"))
                }
            }
        }
        if let distributed, let trace {
            try distributed.trace.start(writingTo: trace, comm: world, title: "mpitrain gnn --mode \(mode.rawValue) on \(world.size) ranks",
                                        stepName: "epoch")
        }
        let sink = try world.isRoot ? metrics.map { try MetricsSink(path: $0) } : nil
        try sink?.write(RunConfiguration(self, ranks: world.size, extra: LayoutRecord(distributed)))
        var run = GNNTrainingRun(epochs: epochs)
        run.adaptiveDeadline = adaptiveDeadline
        run.trace = distributed?.trace
        let summary = try run.run(trainer, on: world) { report in
            try sink?.write(report, kind: "epoch")
            if world.isRoot && (report.epoch % printEvery == 0 || report.epoch == 1 || report.epoch == epochs) {
                print(GNNReportFormat.line(report))
            }
            if let check = checked?.lastGradientCheck, check.epoch == report.epoch {
                try sink?.write(check, kind: "gradient-check")
                print(GNNReportFormat.gradientCheck(check))
            }
        }
        guard world.isRoot else { return }
        print(GNNReportFormat.summary(summary.reports))
        if let peaks = summary.peakResidentSetBytes { print(GNNReportFormat.peakResidentSet(peaks)) }
        if let trace { print("wrote \(trace)") }
    }

    /// The graph `--dataset` names, with the lines its reader wants printed (a drawn split, skipped edges).
    func loadGraph() throws -> (Graph, notes: [String]) {
        if dataset == "csbm" {
            if let split { throw ConfigError("--split \(split) picks one of an OGB directory's split/<name>; csbm is generated") }
            return (csbm.generator(seed: seed).generate(), [])
        }
        var directory = dataset
        if !dataset.contains("/"), !FileManager.default.fileExists(atPath: dataset) {
            guard let shared = SharedDatasets.directory(dataset) else {
                throw CommandError("no data set '\(dataset)': not a directory here, and no ../shared/datasets/\(dataset) beside the clone")
            }
            directory = shared
        }
        let loaded = try GraphLayout.detect(directory).read(directory, options: GraphReadOptions(seed: seed, onBadEdge: onBadEdge, split: split))
        return (loaded.graph, loaded.notes)
    }
}

/// Parameters of a generated contextual SBM graph.
struct CSBMOptions: ParsableArguments {
    @Option(help: "csbm: nodes.") var nodes: Int = 20_000
    @Option(help: "csbm: average degree.") var degree: Double = 20
    @Option(help: "csbm: classes.") var classes: Int = 8
    @Option(help: "csbm: features.") var features: Int = 128
    @Option(help: "csbm: fraction of edges inside a class.") var homophily: Double = 0.8
    @Option(help: "csbm: class-mean scale against unit noise.") var signalToNoise: Double = 0.15

    func validate() throws {
        guard nodes >= 2, classes >= 2, classes <= nodes, features >= 1 else {
            throw ValidationError("--nodes and --classes must be at least 2 (classes at most nodes) and --features at least 1")
        }
        guard degree.isFinite, degree > 0, degree < Double(nodes) else {
            throw ValidationError("--degree must be a positive number below --nodes, not \(degree)")
        }
        guard homophily.isFinite, (0...1).contains(homophily) else { throw ValidationError("--homophily must be in 0...1, not \(homophily)") }
        guard signalToNoise.isFinite, signalToNoise >= 0 else {
            throw ValidationError("--signal-to-noise must be a number at least 0, not \(signalToNoise)")
        }
        // Features as floats and both directions of every edge as indices, before anything is allocated.
        let bytes = Double(nodes) * (Double(features) * 4 + degree * 16)
        let physical = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes <= physical else {
            throw ValidationError("--nodes \(nodes) with --features \(features) and --degree \(degree) needs about "
                                  + String(format: "%.1f GiB, over this machine's %.1f GiB", bytes / 1_073_741_824, physical / 1_073_741_824))
        }
    }

    func generator(seed: UInt64) -> ContextualSBM {
        var g = ContextualSBM()
        g.nodeCount = nodes
        g.averageDegree = degree
        g.classCount = classes
        g.featureCount = features
        g.homophily = homophily
        g.signalToNoise = signalToNoise
        g.seed = seed
        return g
    }
}

/// Refuses layer counts, widths and chunk counts past what any machine trains.
func checkGNNShape(layers: [Int], hidden: Int, chunks: Int) throws {
    guard layers.allSatisfy({ (1...1024).contains($0) }), (1...65536).contains(hidden), (1...65536).contains(chunks) else {
        throw ValidationError("--layers must be in 1...1024, --hidden and --chunks in 1...65536")
    }
}

/// Refuses, before anything is allocated, a model over `graph` whose activations would not
/// fit in physical memory: every layer's, their gradients and the pipeline's stale copies.
func checkGNNFits(_ graph: Graph, layers: Int, hidden: Int) throws {
    let needed = Double(graph.nodeCount) * Double(max(hidden, graph.featureCount)) * Double(layers) * 4 * 4
    let physical = Double(ProcessInfo.processInfo.physicalMemory)
    guard needed <= physical else {
        throw ConfigError("--layers \(layers) x --hidden \(hidden) over \(graph.nodeCount) nodes "
                          + String(format: "needs about %.1f GiB, over this machine's %.1f GiB", needed / 0x1p30, physical / 0x1p30))
    }
}

/// Lines the GNN commands print.
enum GNNReportFormat {
    static func line(_ r: GNNEpochReport) -> String {
        String(format: "epoch %4d  loss %.4f  train %.3f  val %.3f  test %.3f  %.1f ms", r.epoch, r.loss, r.trainAccuracy,
               r.validationAccuracy, r.testAccuracy, r.seconds * 1000)
            + (r.bytesSent > 0 ? "  sent \(formatBytes(r.bytesSent))" : "")
    }

    static func summary(_ reports: [GNNEpochReport]) -> String {
        let times = reports.map(\.seconds).sorted()
        let best = reports.max { $0.validationAccuracy < $1.validationAccuracy }!
        let last = reports.last!
        return String(format: "final: test %.3f (val %.3f) after %d epochs; best val %.3f at epoch %d (test %.3f); median epoch %.2f ms",
                      last.testAccuracy, last.validationAccuracy, last.epoch, best.validationAccuracy, best.epoch,
                      best.testAccuracy, times[times.count / 2] * 1000)
    }

    /// A gradient check as a table: over all weights, then layers 0, 1, 2, 4, 8, ... and the last two.
    static func gradientCheck(_ c: PipelinedGradientCheck) -> String {
        let count = c.pipelinedPerLayer.count
        var shown = Set([0, count - 2, count - 1].filter { $0 >= 0 })
        var power = 1
        while power < count { shown.insert(power); power *= 2 }
        let cell = { (a: GradientAgreement) in pad(String(format: "%.3f", a.cosine), 10) + pad(String(format: "%.3f", a.normRatio), 8) }
        var lines = [String(format: "  gradient check, epoch %d: training loss %.4f exact, %.4f pipelined", c.epoch, c.exactLoss, c.pipelinedLoss),
                     pad("", 9) + pad("pipelined epoch", 18) + pad("this epoch's rows", 20),
                     pad("layer", 9) + pad("cosine", 10) + pad("norm", 8) + pad("cosine", 12) + pad("norm", 8),
                     pad("all", 9) + cell(c.pipelined) + pad("", 2) + cell(c.droppedOnly)]
        for l in shown.sorted() {
            lines.append(pad(String(l), 9) + cell(c.pipelinedPerLayer[l]) + pad("", 2) + cell(c.droppedOnlyPerLayer[l]))
        }
        return lines.joined(separator: "\n")
    }

    /// Every rank's peak resident set in MiB, in rank order.
    static func peakResidentSet(_ bytes: [UInt64]) -> String {
        "peak resident set per rank: " + bytes.map { String(($0 + (1 << 19)) >> 20) }.joined(separator: " ") + " MiB"
    }
}

/// Bytes with a binary unit.
func formatBytes(_ bytes: UInt64) -> String {
    let value = Double(bytes)
    if bytes >= 1 << 30 { return String(format: "%.2f GiB", value / 1_073_741_824) }
    if bytes >= 1 << 20 { return String(format: "%.2f MiB", value / 1_048_576) }
    if bytes >= 1 << 10 { return String(format: "%.1f KiB", value / 1024) }
    return "\(bytes) B"
}

extension GNNArchitecture: ExpressibleByArgument {}
extension GraphPartitioner: ExpressibleByArgument {}
extension GNNStage.StaleGradients: ExpressibleByArgument {}
extension DistributedGNNTrainer.ChunkOrder: ExpressibleByArgument {}

/// How a distributed run laid the model and the graph over its ranks, and how it treats
/// historical values (options left out take their defaults here).
private struct LayoutRecord: Encodable {
    let stages: Int?
    let partitions: Int?
    let chunks: Int?
    let staleMomentum: Float?
    let refreshEvery: Int?

    init(_ trainer: DistributedGNNTrainer?) {
        stages = trainer?.layout.stages
        partitions = trainer?.layout.partitions
        chunks = trainer?.layout.chunks
        staleMomentum = trainer?.stage.staleMomentum
        refreshEvery = trainer?.refreshEvery
    }
}
