import Foundation
import Models

/// Epoch time and communication of the GNN training modes on one graph, side by side, with
/// the bytes each mode should send predicted from the layout (graph: 2·L·halo·d per epoch,
/// pipeline: 2·(R-1)·N·d), and the single-rank time split into SpMM, GEMM and the rest.
public struct GNNBenchmark {
    public struct Row: Codable, Sendable {
        public let mode: String
        public let layers: Int
        public let ranks: Int
        public let medianEpochSeconds: Double
        public let bytesPerEpoch: UInt64
        public let predictedBytesPerEpoch: UInt64?
        /// Single rank only: time inside SpMM and inside GEMM during the median epoch.
        public let sparseSeconds: Double?
        public let denseSeconds: Double?
    }

    public var config: GNNConfig
    public var graph: Graph
    public var epochs = 5
    public var chunks = 4
    public var stages = 2

    public init(config: GNNConfig, graph: Graph) {
        self.config = config
        self.graph = graph
    }

    /// Single-rank epochs on rank 0 while the others wait; the row on rank 0 only.
    public func singleRank(on world: Communicator) throws -> Row? {
        var row: Row?
        if world.isRoot {
            let trainer = try GNNTrainer(config: config, graph: graph)
            _ = trainer.trainEpoch(0)
            var samples: [(Double, Double, Double)] = []
            for epoch in 1...epochs {
                trainer.stage.resetKernelTimers()
                let start = ContinuousClock.now
                _ = trainer.trainEpoch(epoch)
                samples.append(((ContinuousClock.now - start).seconds, trainer.stage.sparseSeconds, trainer.stage.denseSeconds))
            }
            let median = samples.sorted { $0.0 < $1.0 }[samples.count / 2]
            row = Row(mode: "single", layers: config.layers, ranks: 1, medianEpochSeconds: median.0, bytesPerEpoch: 0,
                      predictedBytesPerEpoch: nil, sparseSeconds: median.1, denseSeconds: median.2)
        }
        try world.barrier()
        return row
    }

    /// Epochs in one distributed mode on every rank; the row is complete on every rank.
    public func distributed(_ mode: String, stages: Int, chunks: Int, on world: Communicator) throws -> Row {
        let trainer = try DistributedGNNTrainer(config: config, graph: graph, world: world, stages: stages, chunks: chunks,
                                                partitioner: .metis, staleGradients: .deferred)
        _ = try trainer.trainEpoch(0)
        var times: [Double] = []
        var bytes: UInt64 = 0
        for epoch in 1...epochs {
            try world.barrier()
            let start = ContinuousClock.now
            let result = try trainer.trainEpoch(epoch)
            times.append(try world.allreduce((ContinuousClock.now - start).seconds, .max))
            bytes = result.bytesSent
        }
        let layout = trainer.layout
        let d = UInt64(config.hidden) * 4
        var predicted: UInt64?
        if layout.partitions > 1 && layout.stages == 1 {
            let halo = UInt64(try world.allreduce(Int64(trainer.haloRows), .sum))
            predicted = 2 * UInt64(config.layers) * halo * d
        } else if layout.partitions == 1 {
            predicted = 2 * UInt64(layout.stages - 1) * UInt64(graph.nodeCount) * d
        }
        return Row(mode: mode, layers: config.layers, ranks: world.size, medianEpochSeconds: median(times),
                   bytesPerEpoch: bytes, predictedBytesPerEpoch: predicted, sparseSeconds: nil, denseSeconds: nil)
    }
}
