import ArgumentParser
import Distributed
import Foundation
import Models

/// `mpitrain bench gnn`: epoch time and bytes per epoch of every GNN mode on one graph.
struct BenchGNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gnn",
        abstract: "Epoch time and bytes per epoch of single-rank, graph-parallel, pipeline and hybrid GNN training.",
        discussion: "On R > 1 ranks every mode runs; on one rank only the single-rank split into SpMM and GEMM time. "
            + "gnn-csbm-20k: ./launch run -n 4 -- bench gnn; gnn-csbm-200k: mpitrain bench gnn --nodes 200000 --degree 10 --layers 8")

    @OptionGroup var csbm: CSBMOptions

    @Option(parsing: .upToNextOption, help: "Layer counts to measure.")
    var layers: [Int] = [8, 16]

    @Option(help: "Hidden width.")
    var hidden: Int = 128

    @Option(help: "Timed epochs per mode (after one untimed epoch).")
    var epochs: Int = 5

    @Option(help: "Chunks per partition in the pipeline and hybrid modes.")
    var chunks: Int = 4

    @Option(help: "Pipeline stages of the hybrid mode.")
    var stages: Int = 2

    @Option(help: "Seed of the graph and the weights.")
    var seed: UInt64 = 0

    @Option(help: "Also write the rows as JSON to this file.")
    var json: String?

    func validate() throws {
        guard epochs >= 1, chunks >= 1, stages >= 1, !layers.isEmpty, layers.allSatisfy({ $0 >= 2 }) else {
            throw ValidationError("--epochs, --chunks and --stages must be at least 1, and every layer count at least 2")
        }
        try checkGNNShape(layers: layers, hidden: hidden, chunks: chunks)
    }

    func run() throws {
        if let json { try OutputPaths.checkFile(json, "JSON file") }
        let world = try MPIRuntime.world()
        let graph = csbm.generator(seed: seed).generate()
        try checkGNNFits(graph, layers: layers.max()!, hidden: hidden)
        if world.isRoot {
            print("# mpitrain bench gnn: csbm \(graph.nodeCount) nodes, \(graph.edgeCount) edges, \(graph.featureCount) features; "
                  + "GCN x \(hidden), dropout 0.5; \(world.size) rank(s); median of \(epochs) epochs")
            print(pad("mode", 10) + pad("layers", 8) + pad("ranks", 7) + pad("epoch ms", 11) + pad("MiB/epoch", 11)
                  + pad("predicted", 11) + pad("meas/pred", 11) + pad("SpMM ms", 10) + pad("GEMM ms", 10))
        }
        var rows: [GNNBenchmark.Row] = []
        for layerCount in layers {
            var config = GNNConfig(inputWidth: graph.featureCount, classes: graph.classCount)
            config.layers = layerCount
            config.hidden = hidden
            config.residual = true
            config.seed = seed
            var benchmark = GNNBenchmark(config: config, graph: graph)
            benchmark.epochs = epochs
            var measured: [GNNBenchmark.Row] = []
            if let single = try benchmark.singleRank(on: world) { measured.append(single) } else if world.size == 1 { continue }
            if world.size > 1 {
                measured.append(try benchmark.distributed("graph", stages: 1, chunks: 1, on: world))
                measured.append(try benchmark.distributed("pipeline", stages: world.size, chunks: chunks, on: world))
                if world.size % stages == 0 && stages > 1 && stages < world.size && stages <= layerCount {
                    measured.append(try benchmark.distributed("hybrid", stages: stages, chunks: chunks, on: world))
                }
            }
            guard world.isRoot else { continue }
            for row in measured {
                let mib = { (b: UInt64) in String(format: "%.1f", Double(b) / 1_048_576) }
                print(pad(row.mode, 10) + pad(String(row.layers), 8) + pad(String(row.ranks), 7)
                      + pad(fixed(row.medianEpochSeconds * 1000), 11) + pad(mib(row.bytesPerEpoch), 11)
                      + pad(row.predictedBytesPerEpoch.map(mib) ?? "-", 11)
                      + pad(row.predictedBytesPerEpoch.map { String(format: "%.2f", Double(row.bytesPerEpoch) / Double(max($0, 1))) } ?? "-", 11)
                      + pad(row.sparseSeconds.map { fixed($0 * 1000) } ?? "-", 10) + pad(row.denseSeconds.map { fixed($0 * 1000) } ?? "-", 10))
            }
            if let graphRow = measured.first(where: { $0.mode == "graph" }), let pipelineRow = measured.first(where: { $0.mode == "pipeline" }),
               let graphPredicted = graphRow.predictedBytesPerEpoch, let pipelinePredicted = pipelineRow.predictedBytesPerEpoch {
                let measuredRatio = Double(graphRow.bytesPerEpoch) / Double(pipelineRow.bytesPerEpoch)
                let predictedRatio = Double(graphPredicted) / Double(pipelinePredicted)
                print(String(format: "  %d layers: graph/pipeline bytes %.2fx measured, %.2fx predicted from the halo (%.0f%% of predicted)",
                             layerCount, measuredRatio, predictedRatio, 100 * measuredRatio / predictedRatio))
            }
            rows += measured
        }
        if world.isRoot, let json {
            try JSONFile.write(rows, to: json)
            print("wrote \(json)")
        }
    }
}
