/// Training throughput of one DLRM configuration on one rank (forward, backward, update on
/// pre-generated synthetic batches), with the time inside sgemm, the MLPs, the embedding
/// kernels and the interaction, and the embedding kernels' bandwidth.
public struct DLRMBenchmark {
    /// A fixed configuration of ../shared/BENCHMARKS.md.
    public struct Setup: Sendable {
        public var name: String
        public var config: DLRMConfig
        public var pooling: Int
        public var distribution: IndexDistribution
        public var batchSize: Int

        public static func named(_ name: String) throws(ConfigError) -> Setup {
            switch name {
            case "bench-A":
                return Setup(name: name, config: try DLRMConfig(
                    bottomMLP: [13, 512, 256, 64], topMLP: [512, 256, 1],
                    tables: (0..<8).map { EmbeddingTableSpec(name: "t\($0)", rows: 200_000, dim: 64) }),
                    pooling: 20, distribution: .uniform, batchSize: 2048)
            case "bench-B":
                return Setup(name: name, config: try DLRMConfig(
                    bottomMLP: [13, 512, 256, 64, 16], topMLP: [512, 256, 1],
                    tables: (0..<26).map { EmbeddingTableSpec(name: "t\($0)", rows: 10_000, dim: 16) }),
                    pooling: 1, distribution: .zipf(1.05), batchSize: 128)
            default:
                throw ConfigError("no DLRM benchmark '\(name)' (bench-A, bench-B)")
            }
        }
    }

    public struct Row: Codable, Sendable {
        public let name: String
        public let blasThreads: Int
        public let samplesPerSecond: Double
        public let stepMilliseconds: Double
        public let mlpMilliseconds: Double
        public let sgemmMilliseconds: Double
        public let embeddingMilliseconds: Double
        public let interactionMilliseconds: Double
        /// Embedding rows read and written per second inside the embedding kernels.
        public let embeddingBytesPerSecond: Double
        /// Reads per second of random rows of the configuration's width, and of random 64-byte
        /// lines, over a table of the same bytes as its tables, measured after the timed runs:
        /// the floor a gather of its rows can reach, where a sequential copy is not one.
        public var rowGatherBytesPerSecond = 0.0
        public var lineGatherBytesPerSecond = 0.0
    }

    public var setup: Setup
    public var steps: Int
    public var runs = 3
    public var warmupSteps = 3
    public var distinctBatches = 8

    public init(setup: Setup, steps: Int) {
        self.setup = setup
        self.steps = steps
    }

    /// Median run by samples/s; the kernel times are that run's, per step.
    public func run(blasThreads: Int) throws -> Row {
        let data = try SyntheticClicks(config: setup.config, pooling: [Int](repeating: setup.pooling, count: setup.config.tables.count),
                                       distribution: setup.distribution, seed: 0)
        let b = setup.batchSize
        let batches = (0..<distinctBatches).map { data.batch(samples: $0 * b ..< ($0 + 1) * b) }
        let dlrm = DLRM(config: setup.config, seed: 0)
        dlrm.embeddings.threads = blasThreads
        for step in 0..<warmupSteps { dlrm.trainStep(batches[step % batches.count], learningRate: 0.01) }
        var rows: [Row] = []
        for _ in 0..<runs {
            dlrm.mlpTimer.reset()
            dlrm.interactionTimer.reset()
            dlrm.embeddings.timer.reset()
            dlrm.bottom.blasTimer.reset()
            dlrm.top.blasTimer.reset()
            var bytes = 0
            let start = ContinuousClock.now
            for step in 0..<steps {
                dlrm.trainStep(batches[step % batches.count], learningRate: 0.01)
                bytes += dlrm.embeddings.bytesMoved
            }
            let seconds = (ContinuousClock.now - start).seconds
            let perStep = 1000 / Double(steps)
            rows.append(Row(name: setup.name, blasThreads: blasThreads, samplesPerSecond: Double(steps * b) / seconds,
                            stepMilliseconds: seconds * perStep, mlpMilliseconds: dlrm.mlpTimer.seconds * perStep,
                            sgemmMilliseconds: (dlrm.bottom.blasTimer.seconds + dlrm.top.blasTimer.seconds) * perStep,
                            embeddingMilliseconds: dlrm.embeddings.timer.seconds * perStep,
                            interactionMilliseconds: dlrm.interactionTimer.seconds * perStep,
                            embeddingBytesPerSecond: Double(bytes) / dlrm.embeddings.timer.seconds))
        }
        var median = rows.sorted { $0.samplesPerSecond < $1.samplesPerSecond }[rows.count / 2]
        let megabytes = max(1, setup.config.tables.reduce(0) { $0 + $1.rows * $1.dim * MemoryLayout<Float>.size } >> 20)
        let rowBytes = setup.config.tables.map(\.dim).max()! * MemoryLayout<Float>.size
        median.rowGatherBytesPerSecond = MemoryBandwidth.randomGatherBytesPerSecond(megabytes: megabytes, rowBytes: rowBytes)
        median.lineGatherBytesPerSecond = MemoryBandwidth.randomGatherBytesPerSecond(megabytes: megabytes, rowBytes: 64)
        return median
    }
}
