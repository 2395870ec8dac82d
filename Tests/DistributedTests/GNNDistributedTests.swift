import Foundation
import TestSupport
import Testing

/// Distributed GNN modes against single-rank training on the same generated graph.
@Suite(.serialized)
struct GNNDistributedTests {
    struct Epoch: Decodable {
        let epoch: Int
        let loss: Double
        let testAccuracy: Double
        let validationAccuracy: Double
        let bytesSent: UInt64
    }

    static let graph = ["--dataset", "csbm", "--nodes", "1500", "--degree", "8", "--classes", "4", "--features", "24",
                        "--signal-to-noise", "0.3", "--seed", "4"]

    /// Runs `mpitrain gnn` and returns its per-epoch metrics.
    func train(_ extra: [String], ranks: Int, epochs: Int = 12) throws -> [Epoch] {
        let metrics = FileManager.default.temporaryDirectory.appendingPathComponent("gnn-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: metrics) }
        let run = try MPIRun.mpitrain(["gnn"] + Self.graph + ["--epochs", String(epochs), "--metrics", metrics.path] + extra, ranks: ranks)
        guard run.status == 0 else { throw HarnessError("gnn \(extra) on \(ranks) ranks: exit \(run.status): \(run.stderr)") }
        let lines = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n")
        #expect(lines.first?.contains("\"kind\":\"config\"") == true && lines.first?.contains("\"ranks\":\(ranks)") == true)
        let epochs = lines.dropFirst()
        #expect(epochs.allSatisfy { $0.contains("\"kind\":\"epoch\"") && $0.contains("\"time\":") }, "\(lines.first ?? "")")
        return try epochs.map { try JSONDecoder().decode(Epoch.self, from: Data($0.utf8)) }
    }

    static let model = ["--layers", "4", "--hidden", "16", "--dropout", "0.5"]

    @Test(arguments: [2, 3])
    func pipelineWithOneChunkEqualsSingleRankExactly(ranks: Int) throws {
        let single = try train(Self.model, ranks: 1)
        let pipeline = try train(Self.model + ["--mode", "pipeline", "--chunks", "1"], ranks: ranks)
        #expect(pipeline.map(\.loss) == single.map(\.loss))
        #expect(pipeline.map(\.testAccuracy) == single.map(\.testAccuracy))
    }

    /// Refreshing the historical embeddings every epoch leaves nothing stale: every epoch is
    /// exact, as in a warm-up, and the run is one rank's but for the order of sums.
    @Test func pipelineRefreshedEveryEpochRunsExactEpochs() throws {
        let pipeline = Self.model + ["--mode", "pipeline", "--chunks", "3"]
        let refreshed = try train(pipeline + ["--refresh-every", "1"], ranks: 3)
        let warmedUp = try train(pipeline + ["--warmup-epochs", "12"], ranks: 3)
        let single = try train(Self.model, ranks: 1)
        #expect(refreshed.map(\.loss) == warmedUp.map(\.loss))
        for (a, b) in zip(single, refreshed) {
            #expect(abs(a.loss - b.loss) <= 1e-5 * max(1, abs(a.loss)), "epoch \(a.epoch): \(a.loss) vs \(b.loss)")
        }
    }

    @Test(arguments: [2, 4])
    func graphModeEqualsSingleRankWithinTolerance(ranks: Int) throws {
        let single = try train(Self.model, ranks: 1)
        let graph = try train(Self.model + ["--mode", "graph"], ranks: ranks)
        for (a, b) in zip(single, graph) {
            #expect(abs(a.loss - b.loss) <= 1e-4 * max(1, abs(a.loss)), "epoch \(a.epoch): \(a.loss) vs \(b.loss)")
        }
        #expect(graph.allSatisfy { $0.bytesSent > 0 })
    }

    @Test func pipelineSendsTwoPassesOfEveryBoundary() throws {
        // 3 stages of a 4-layer, 16-wide GCN: forward rows and backward gradients of all 1,500
        // nodes cross each of the 2 boundaries once per epoch, 4 bytes per value.
        let run = try train(Self.model + ["--mode", "pipeline", "--chunks", "3"], ranks: 3, epochs: 2)
        #expect(run.allSatisfy { $0.bytesSent == UInt64(2 * 2 * 1500 * 16 * 4) }, "\(run.map(\.bytesSent))")
    }

    @Test func pipelineAndHybridLearnAsWellAsOneRank() throws {
        let epochs = 150
        let deep = ["--layers", "6", "--hidden", "16", "--dropout", "0.2", "--lr", "0.01"]
        let pipelined = ["--chunks", "4", "--warmup-epochs", "20"]
        let single = try train(deep, ranks: 1, epochs: epochs).last!
        let pipeline = try train(deep + pipelined + ["--mode", "pipeline"], ranks: 3, epochs: epochs).last!
        let hybrid = try train(deep + pipelined + ["--mode", "hybrid", "--stages", "2"], ranks: 4, epochs: epochs).last!
        #expect(single.testAccuracy > 0.9, "single-rank test accuracy \(single.testAccuracy)")
        #expect(abs(pipeline.testAccuracy - single.testAccuracy) < 0.03, "pipeline \(pipeline.testAccuracy) vs \(single.testAccuracy)")
        #expect(abs(hybrid.testAccuracy - single.testAccuracy) < 0.03, "hybrid \(hybrid.testAccuracy) vs \(single.testAccuracy)")
    }

    @Test(arguments: [
        (["--mode", "pipeline", "--chunks", "5", "--chunk-order", "random", "--layers", "3"], 3),
        (["--mode", "pipeline", "--chunks", "2", "--layers", "6", "--stale-gradients", "dropped"], 4),
        (["--mode", "hybrid", "--stages", "2", "--chunks", "5", "--layers", "2"], 4),
        (["--mode", "graph", "--model", "gcnii", "--layers", "5"], 3),
    ] as [([String], Int)])
    func finishesForAnyChunkLayerAndRankCount(arguments: [String], ranks: Int) throws {
        let run = try MPIRun.mpitrain(["gnn"] + Self.graph + ["--epochs", "2", "--hidden", "8"] + arguments, ranks: ranks, timeLimit: 60)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("final: test"))
        let peaks = try #require(run.lines(startingWith: "peak resident set per rank: ").first)
        #expect(peaks.split(separator: " ").dropFirst(5).dropLast().count == ranks, "\(peaks)")
    }

    /// GNNPipe's reason to exist is depth: a 64-layer GCNII spread over 4 stages, with pipelined
    /// epochs between exact ones, completes for chunk counts that do and do not divide the graph.
    @Test(arguments: [1, 2, 7, 16])
    func deepGCNIIPipelineFinishesForAnyChunkCount(chunks: Int) throws {
        let arguments = ["--model", "gcnii", "--layers", "64", "--hidden", "8", "--mode", "pipeline", "--chunks", String(chunks),
                         "--refresh-every", "2", "--stale-gradients", "deferred"]
        let run = try MPIRun.mpitrain(["gnn"] + Self.graph + ["--epochs", "3"] + arguments, ranks: 4, timeLimit: 60)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("layers per stage 0-14 15-30 31-46 47-63"), "\(run.stdout)")
        #expect(run.stdout.contains("final: test"))
    }

    @Test func deepGCNIIPipelineWithOneChunkEqualsSingleRankExactly() throws {
        let deep = ["--model", "gcnii", "--layers", "16", "--hidden", "16"]
        let single = try train(deep, ranks: 1, epochs: 6)
        let pipeline = try train(deep + ["--mode", "pipeline", "--chunks", "1"], ranks: 4, epochs: 6)
        #expect(pipeline.map(\.loss) == single.map(\.loss))
    }

    /// A 4-rank pipeline's trace: four named processes, each holding its own layers' forward
    /// and backward of every chunk in every epoch.
    @Test func pipelineTraceShowsEveryStageAsAProcess() throws {
        try withTemporaryDirectory("gnn-trace") { directory in
            let trace = directory.appendingPathComponent("trace.json").path
            let run = try MPIRun.mpitrain(["gnn"] + Self.graph + ["--epochs", "2", "--hidden", "8", "--layers", "4", "--mode", "pipeline",
                                                                  "--chunks", "3", "--trace", trace], ranks: 4, timeLimit: 60)
            #expect(run.status == 0, "\(run.stderr)")
            let events = try DLRMCommandTests.TraceEvent.read(trace)
            #expect(events.compactMap(\.processName).count == 4)
            for rank in 0..<4 {
                let forward = events.filter { $0.pid == rank && $0.name == "forward" }
                #expect(Set(forward.compactMap { if case .number(let layer)? = $0.args?["layer"] { layer } else { nil } }) == [rank])
                #expect(Set(forward.compactMap { if case .number(let epoch)? = $0.args?["epoch"] { epoch } else { nil } }) == [1, 2])
                #expect(Set(forward.compactMap { if case .number(let chunk)? = $0.args?["chunk"] { chunk } else { nil } }) == [0, 1, 2])
            }
        }
    }

    @Test(arguments: [
        (["--mode", "pipeline", "--layers", "2"], 3, "3 pipeline stages for 2 layers: each stage needs at least one layer"),
        (["--mode", "hybrid", "--stages", "3"], 4, "4 ranks do not split into 3 stages of equal size"),
        (["--mode", "hybrid"], 2, "--mode hybrid needs --stages"),
        (["--model", "gcnii", "--layers", "2"], 1, "gcnii needs at least 3 layers"),
        (["--mode", "single"], 2, "--mode single runs on one rank"),
        (["--trace", "/tmp/trace.json"], 1, "--trace records the phases of --mode pipeline, graph or hybrid; --mode single has none"),
        (["--nodes", "1000000000000"], 1, "--nodes 1000000000000 with --features 24 and --degree 8.0 needs about"),
        (["--degree", "nan"], 1, "--degree must be a positive number below --nodes, not nan"),
        (["--classes", "0"], 1, "--nodes and --classes must be at least 2"),
        (["--homophily", "2"], 1, "--homophily must be in 0...1, not 2.0"),
        (["--alpha", "nan"], 1, "--alpha must be in 0...1, not nan"),
        (["--lr=-1"], 1, "--lr must be a positive number, not -1.0"),
        (["--hidden", "1000000000000"], 1, "--layers must be in 1...1024, --hidden and --chunks in 1...65536"),
        (["--dropout", "1"], 1, "--dropout must be in 0..<1, not 1.0"),
        (["--hidden", "65536", "--layers", "1024"], 1, "--layers 1024 x --hidden 65536 over 1500 nodes needs about"),
        (["--mode", "pipeline", "--stale-momentum", "1"], 2, "--stale-momentum must be in 0..<1, not 1.0"),
        (["--mode", "pipeline", "--stale-momentum=-0.5"], 2, "--stale-momentum must be in 0..<1, not -0.5"),
        (["--mode", "hybrid", "--stages", "2", "--stale-momentum", "nan"], 4, "--stale-momentum must be in 0..<1, not nan"),
        (["--mode", "pipeline", "--refresh-every=-1"], 2, "--refresh-every must be at least 0, not -1"),
        (["--stale-momentum", "0.9"], 1, "--stale-momentum acts on the historical embeddings of --mode pipeline or hybrid; --mode single has none"),
        (["--mode", "graph", "--refresh-every", "5"], 2, "--refresh-every acts on the historical embeddings of --mode pipeline or hybrid; --mode graph has none"),
        (["--model", "gcnii", "--layers", "4", "--conv-weight-decay=-0.01"], 1, "--conv-weight-decay must be a number at least 0, not -0.01"),
        (["--conv-weight-decay", "0.01"], 1, "--conv-weight-decay acts on --model gcnii's convolutions"),
        (["--model", "gcnii", "--layers", "4", "--decay-all-layers"], 1, "--decay-all-layers acts on --model gcn; gcnii decays"),
        (["--gradient-check", "0"], 1, "--gradient-check must be at least 1, not 0"),
        (["--mode", "pipeline", "--gradient-check", "5"], 2, "--gradient-check measures exact single-rank training; --mode pipeline trains pipelined or partitioned"),
        (["--gradient-check", "5", "--chunks", "1"], 1, "--gradient-check compares with a pipeline of --chunks chunks, at least 2, not 1"),
    ] as [([String], Int, String)])
    func badShapesStopWithOneLine(arguments: [String], ranks: Int, message: String) throws {
        let run = try MPIRun.mpitrain(["gnn"] + Self.graph + ["--epochs", "1"] + arguments, ranks: ranks)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    }

    @Test func unreadableDatasetNamesTheFile() throws {
        let run = try MPIRun.mpitrain(["gnn", "--dataset", "/no/such/cora"])
        #expect(run.status == 1)
        #expect(run.stderr == "mpitrain: error: /no/such/cora: no such directory\n")
    }

    /// An OGB directory of 40 nodes in two classes, without a split, with `edges` as raw/edge.csv.
    func withOGBDirectory(edges: String, _ body: (String) throws -> Void) throws {
        try withTemporaryDirectory("gnn-ogb") { directory in
            let raw = directory.appendingPathComponent("raw")
            try FileManager.default.createDirectory(at: raw, withIntermediateDirectories: true)
            let features = (0..<40).map { i in i % 2 == 0 ? "1,0,\(i % 5)" : "0,1,\(i % 3)" }.joined(separator: "\n") + "\n"
            try features.write(to: raw.appendingPathComponent("node-feat.csv"), atomically: true, encoding: .utf8)
            try ((0..<40).map { String($0 % 2) }.joined(separator: "\n") + "\n")
                .write(to: raw.appendingPathComponent("node-label.csv"), atomically: true, encoding: .utf8)
            try edges.write(to: raw.appendingPathComponent("edge.csv"), atomically: true, encoding: .utf8)
            try body(directory.path)
        }
    }

    @Test func trainsOnAnOGBDirectoryAndSaysWhatItDecided() throws {
        let ring = (0..<40).map { "\($0),\(($0 + 2) % 40)" }
        try withOGBDirectory(edges: (ring + ["3,40", "41,0"]).joined(separator: "\n") + "\n") { directory in
            let arguments = ["gnn", "--dataset", directory, "--mode", "single", "--epochs", "2"]
            let failed = try MPIRun.mpitrain(arguments)
            #expect(failed.status == 1 && failed.stderr == "mpitrain: error: \(directory)/raw/edge.csv:41: names node 40, outside 0..<40\n", "\(failed.stderr)")
            let run = try MPIRun.mpitrain(arguments + ["--on-bad-edge", "skip"])
            #expect(run.status == 0, "\(run.stderr)")
            let lines = run.stdout.split(separator: "\n")
            #expect(lines.prefix(3) == ["skipped 2 edges naming nodes outside 0..<40 (edge.csv lines 41, 42)",
                                        "no split in \(directory): drew one from --seed 0, per class 60% train, 20% validation, 20% test",
                                        "graph: 40 nodes, 40 edges, 3 features, 2 classes; 24/8/8 train/val/test"], "\(run.stdout)")
            #expect(run.lines(startingWith: "final: test").count == 1)
        }
    }
}
