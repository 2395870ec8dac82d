import Models
import Sharding

/// Training throughput of a benchmark DLRM across the ranks of a communicator, by the same
/// `ShardedDLRM` step a job runs, on pre-generated synthetic batches: strong scaling (the
/// benchmark's global batch split over the ranks) or weak (the batch per rank).
public struct ShardedDLRMBenchmark {
    /// Strong: the benchmark's batch over the ranks. Weak: its batch on every rank. Ceiling:
    /// the one-rank run on every rank at once, each alone (no communication), its rates
    /// summed: what that many ranks could reach on this machine, sharing its caches and memory.
    public enum Scaling: String, Codable, Sendable { case strong, weak, ceiling }

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

        /// The rank with the most embedding time per step.
        public var slowestEmbeddingRank: Int {
            embeddingMilliseconds.indices.max { embeddingMilliseconds[$0] < embeddingMilliseconds[$1] }!
        }

        /// Mean over ranks of the share of the step spent communicating or waiting.
        public var communicationFraction: Double {
            communicationMilliseconds.reduce(0, +) / Double(max(ranks, 1)) / stepMilliseconds
        }
    }

    public var setup: DLRMBenchmark.Setup
    public var steps: Int
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

    /// A trainer on every rank of a communicator and its batches, generated once: each
    /// `timedRun` warms up and times `steps` steps. With a trace path, every step's phases go
    /// to that trace, flushed after each run.
    public final class Session {
        public let comm: Communicator
        public let scaling: Scaling
        public let trainer: ShardedDLRM
        let name: String
        let steps: Int
        let warmupSteps: Int
        let batches: [ClickBatch]

        init(_ benchmark: ShardedDLRMBenchmark, on comm: Communicator, scaling: Scaling, shardsByRank: [[EmbeddingShardSpec]],
             threads: Int, tracePath: String?) throws {
            let setup = benchmark.setup, global = benchmark.globalBatch(scaling, ranks: comm.size)
            guard global % comm.size == 0 else {
                throw ConfigError("\(setup.name): batch \(global) does not split evenly over \(comm.size) ranks")
            }
            let local = global / comm.size
            let data = try SyntheticClicks(config: setup.config, pooling: [Int](repeating: setup.pooling, count: setup.config.tables.count),
                                           distribution: setup.distribution, seed: 0)
            batches = (0..<benchmark.distinctBatches).map { k in
                data.batch(samples: k * global + comm.rank * local ..< k * global + (comm.rank + 1) * local)
            }
            let trace = PhaseTrace(enabled: tracePath != nil)
            trainer = try ShardedDLRM(world: comm, config: setup.config, shardsByRank: shardsByRank, seed: 0, trace: trace)
            if let tracePath {
                try trace.start(writingTo: tracePath, comm: comm, title: "bench dlrm \(setup.name), \(scaling.rawValue) scaling on \(comm.size) ranks")
            }
            trainer.embeddingThreads = threads
            self.comm = comm
            self.scaling = scaling
            name = setup.name
            steps = benchmark.steps
            warmupSteps = benchmark.warmupSteps
        }

        /// Untimed steps, traced as step 0.
        private func warmUp() throws {
            let timedSteps = trainer.trace.step
            trainer.trace.step = 0
            for step in 0..<warmupSteps { try trainer.trainStep(batches[step % batches.count], learningRate: 0.01) }
            trainer.trace.step = timedSteps
        }

        /// Runs the warm-up steps again, since other sessions ran in between, then times `steps`
        /// steps on every rank; the run's row on rank 0 of `comm` (nil elsewhere).
        public func timedRun() throws -> Row? {
            try warmUp()
            try comm.barrier()
            trainer.resetPhaseSeconds()
            let start = ContinuousClock.now
            for step in 0..<steps {
                trainer.trace.step += 1
                try trainer.trainStep(batches[step % batches.count], learningRate: 0.01)
            }
            let seconds = try comm.allreduce((ContinuousClock.now - start).seconds, .max)
            let phases = trainer.phaseSeconds, perStep = 1000 / Double(steps)
            let all = try comm.allgather([phases.embedding * perStep, phases.communication * perStep, phases.dense * perStep])
            if trainer.trace.isEnabled { try trainer.trace.flush(comm: comm) }
            guard comm.isRoot else { return nil }
            let global = batches[0].count * comm.size
            return Row(name: name, scaling: scaling, ranks: comm.size, globalBatch: global,
                       samplesPerSecond: Double(steps * global) / seconds, stepMilliseconds: seconds * perStep,
                       embeddingMilliseconds: stride(from: 0, to: all.count, by: 3).map { all[$0] },
                       communicationMilliseconds: stride(from: 1, to: all.count, by: 3).map { all[$0] },
                       denseMilliseconds: stride(from: 2, to: all.count, by: 3).map { all[$0] })
        }
    }

    /// Builds a session on every rank of `comm` with the embedding shards `shardsByRank`.
    public func prepare(on comm: Communicator, scaling: Scaling, shardsByRank: [[EmbeddingShardSpec]], threads: Int,
                        tracePath: String? = nil) throws -> Session {
        try Session(self, on: comm, scaling: scaling, shardsByRank: shardsByRank, threads: threads, tracePath: tracePath)
    }

    /// The ceiling's row on rank 0 of `world`: the copies' one-rank runs as one, their rates
    /// summed and their phase times side by side (nil elsewhere). Every rank of `world` calls
    /// it; `row` is a copy's own run, nil on ranks without one.
    private func sumCopies(_ row: Row?, copies: Int, on world: Communicator) throws -> Row? {
        let own: [Double] = row.map { [$0.samplesPerSecond, $0.stepMilliseconds, $0.embeddingMilliseconds[0],
                                       $0.communicationMilliseconds[0], $0.denseMilliseconds[0]] } ?? [0, 0, 0, 0, 0]
        let all = try world.allgather(own)
        guard world.isRoot, let row else { return nil }
        let copy = (0..<copies).map { Array(all[($0 * 5)..<($0 * 5 + 5)]) }
        return Row(name: row.name, scaling: .ceiling, ranks: copies, globalBatch: row.globalBatch * copies,
                   samplesPerSecond: copy.reduce(0) { $0 + $1[0] }, stepMilliseconds: copy.map { $0[1] }.max()!,
                   embeddingMilliseconds: copy.map { $0[2] }, communicationMilliseconds: copy.map { $0[3] },
                   denseMilliseconds: copy.map { $0[4] })
    }

    /// One scaling result: the median run of a rank count and scaling, and its speedup over one
    /// rank, the median over rounds of the two rates measured in the same round.
    public struct ScalingRow: Codable, Sendable {
        public let measured: Row
        public let speedup: Double
        /// Each round's speedup, in round order.
        public let roundSpeedups: [Double]
        /// The cost oracle's isolated embedding time of the slowest rank's shards, ms per step.
        public let oracleEmbeddingMilliseconds: Double
    }

    /// Strong and weak scaling over `rankCounts` (one rank first, ascending) with round-robin table-wise
    /// plans, each count on the first ranks of `world` while the others sleep, and the ceiling
    /// of the largest count. Every count and
    /// scaling is built once, then timed once per round, in turn, for `rounds` rounds, so
    /// the machine's drift falls on all of them alike. Hands each row to `report` on rank 0,
    /// in count order, once every round is done. With `tracePath`, the strong-scaling runs of
    /// the largest count write their phases there.
    public func scaling(on world: Communicator, rankCounts: [Int], rounds: Int, threads: Int, tracePath: String? = nil,
                        report: (ScalingRow) -> Void) throws {
        guard rankCounts.first == 1, rankCounts == rankCounts.sorted(), Set(rankCounts).count == rankCounts.count,
              rankCounts.allSatisfy({ $0 >= 1 && $0 <= world.size }) else {
            throw ConfigError("scaling needs distinct rank counts in ascending order from 1 up to the job's \(world.size)")
        }
        let specs = try setup.config.tables.map { table throws(PlanError) in
            try TableSpec(name: table.name, rows: table.rows, dim: table.dim, poolingFactor: Double(setup.pooling),
                          distribution: setup.distribution)
        }
        var cases: [(count: Int, scaling: Scaling, shards: [[EmbeddingShardSpec]])] = []
        for count in rankCounts {
            for scaling in count == 1 ? [.strong] : [Scaling.strong, .weak] {
                cases.append((count, scaling, ShardingPlan.roundRobin(specs, ranks: count).shardsByRank(tables: specs)))
            }
        }
        if let largest = rankCounts.last, largest > 1 { cases.append((largest, .ceiling, cases[0].shards)) }
        let traced = cases.lastIndex { $0.scaling == .strong }!
        var sessions: [Session?] = []
        for (k, entry) in cases.enumerated() {
            // A ceiling's copies each run on a communicator of their own.
            let color = world.rank < entry.count ? (entry.scaling == .ceiling ? world.rank : 0) : nil
            let group = try world.split(color: color)
            sessions.append(try group.map {
                try prepare(on: $0, scaling: entry.scaling, shardsByRank: entry.shards, threads: threads, tracePath: k == traced ? tracePath : nil)
            })
            try world.sleepingBarrier()
        }
        var runs = [[Row]](repeating: [], count: cases.count)
        for _ in 0..<rounds {
            for (k, session) in sessions.enumerated() {
                let row = try session?.timedRun()
                if cases[k].scaling == .ceiling {
                    if let summed = try sumCopies(row, copies: cases[k].count, on: world) { runs[k].append(summed) }
                } else if let row {
                    runs[k].append(row)
                }
                try world.sleepingBarrier()
            }
        }
        if let session = sessions[traced], session.trainer.trace.isEnabled { try session.trainer.trace.finish(comm: session.comm) }
        guard world.isRoot else { return }
        for (k, entry) in cases.enumerated() {
            let measured = runs[k].sorted { $0.samplesPerSecond < $1.samplesPerSecond }[rounds / 2]
            let speedups = zip(runs[k], runs[0]).map { $0.samplesPerSecond / $1.samplesPerSecond }
            // A ceiling's copies each look up a one-rank batch.
            let batch = entry.scaling == .ceiling ? measured.globalBatch / entry.count : measured.globalBatch
            let oracle = CostOracle(batchSize: batch, communication: CommunicationCostModel(tables: [:]))
            let slowest = entry.scaling == .ceiling ? entry.shards[0] : entry.shards[measured.slowestEmbeddingRank]
            let isolated = oracle.compute(byRank: [slowest], tables: specs)[0]
            report(ScalingRow(measured: measured, speedup: speedups.sorted()[rounds / 2], roundSpeedups: speedups,
                              oracleEmbeddingMilliseconds: isolated.forward + isolated.backward))
        }
    }
}
