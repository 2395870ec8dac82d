import Models

/// Training throughput of a benchmark DLRM across the ranks of a communicator, by the same
/// `ShardedDLRM` step a job runs, on pre-generated synthetic batches: strong scaling (the
/// benchmark's global batch split over the ranks) or weak (the batch per rank).
public struct ShardedDLRMBenchmark {
    public enum Scaling: String, Codable, Sendable, CaseIterable { case strong, weak }

    public struct Row: Codable, Sendable {
        public let name: String
        public let scaling: Scaling
        public let ranks: Int
        public let globalBatch: Int
        public let samplesPerSecond: Double
        public let stepMilliseconds: Double
        /// Per rank, milliseconds per step in the embedding kernels, in exchanges and
        /// allreduces (waiting included), and in the MLPs and interaction.
        public let embeddingMilliseconds: [Double]
        public let communicationMilliseconds: [Double]
        public let denseMilliseconds: [Double]

        /// Mean over ranks of the share of the step spent communicating or waiting.
        public var communicationFraction: Double {
            communicationMilliseconds.reduce(0, +) / Double(max(ranks, 1)) / stepMilliseconds
        }
    }

    public var setup: DLRMBenchmark.Setup
    public var steps: Int
    public var runs = 3
    public var warmupSteps = 3
    public var distinctBatches = 4

    public init(setup: DLRMBenchmark.Setup, steps: Int) {
        self.setup = setup
        self.steps = steps
    }

    /// The global batch on `ranks` ranks.
    public func globalBatch(_ scaling: Scaling, ranks: Int) -> Int {
        scaling == .strong ? setup.batchSize : setup.batchSize * ranks
    }

    /// Runs on every rank of `comm` with the embedding shards `shardsByRank`; the median run by
    /// samples/s, with its phase times, on rank 0 (nil elsewhere).
    public func run(on comm: Communicator, scaling: Scaling, shardsByRank: [[EmbeddingShardSpec]], threads: Int) throws -> Row? {
        let global = globalBatch(scaling, ranks: comm.size)
        guard global % comm.size == 0 else {
            throw ConfigError("\(setup.name): batch \(global) does not split evenly over \(comm.size) ranks")
        }
        let local = global / comm.size
        let data = try SyntheticClicks(config: setup.config, pooling: [Int](repeating: setup.pooling, count: setup.config.tables.count),
                                       distribution: setup.distribution, seed: 0)
        let batches = (0..<distinctBatches).map { k in
            data.batch(samples: k * global + comm.rank * local ..< k * global + (comm.rank + 1) * local)
        }
        let trainer = try ShardedDLRM(world: comm, config: setup.config, shardsByRank: shardsByRank, seed: 0)
        trainer.embeddingThreads = threads
        for step in 0..<warmupSteps { try trainer.trainStep(batches[step % batches.count], learningRate: 0.01) }
        var rows: [Row] = []
        for _ in 0..<runs {
            try comm.barrier()
            trainer.resetPhaseSeconds()
            let start = ContinuousClock.now
            for step in 0..<steps { try trainer.trainStep(batches[step % batches.count], learningRate: 0.01) }
            let seconds = try comm.allreduce((ContinuousClock.now - start).seconds, .max)
            let phases = trainer.phaseSeconds, perStep = 1000 / Double(steps)
            let all = try comm.allgather([phases.embedding * perStep, phases.communication * perStep, phases.dense * perStep])
            rows.append(Row(name: setup.name, scaling: scaling, ranks: comm.size, globalBatch: global,
                            samplesPerSecond: Double(steps * global) / seconds, stepMilliseconds: seconds * perStep,
                            embeddingMilliseconds: stride(from: 0, to: all.count, by: 3).map { all[$0] },
                            communicationMilliseconds: stride(from: 1, to: all.count, by: 3).map { all[$0] },
                            denseMilliseconds: stride(from: 2, to: all.count, by: 3).map { all[$0] }))
        }
        return comm.isRoot ? rows.sorted { $0.samplesPerSecond < $1.samplesPerSecond }[rows.count / 2] : nil
    }
}
