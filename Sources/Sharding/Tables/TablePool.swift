import Foundation
import Models

/// Synthetic embedding tables, in one of two shapes (`Shape`).
public enum TablePool {
    public enum Shape: String, CaseIterable, Sendable {
        /// Statistics that resemble the public DLRM traces: hash sizes spread over four decades
        /// (10^2 to 10^6 rows, log-uniform), pooling factors log-normal with mean near 15 and a
        /// long tail (1 to 200), dims 4 to 128 (powers of two, small ones more common), and
        /// access skew from uniform (a third of the tables) to Zipf with s up to 1.2.
        case dlrm
        /// The shape of production pools: a few huge tables beside many tiny ones, and pooling
        /// factors up to a few hundred. 5% of the tables are huge (1-4 M rows, dims 16-64, Zipf
        /// s 0.9-1.3), 60% tiny (10-1,000 rows, dims 4-16), the rest as
        /// `dlrm` (10^3 to 10^6 rows); pooling is log-normal with median 4 and spread e^1.5,
        /// capped at 300; half the tiny tables are one-hot (over 800 tables: mean 8.3, 1% above
        /// 130).
        case heavyTailed = "heavy-tailed"
    }

    public static func generate(count: Int, seed: UInt64, shape: Shape = .dlrm) throws(PlanError) -> [TableSpec] {
        guard count >= 1 else { throw PlanError("--count must be at least 1") }
        var random = SplitMix64(seed: seed, stream: shape == .dlrm ? "table-pool" : "table-pool-" + shape.rawValue)
        /// One of `values`, with probability in proportion to `weights`.
        func pick<T>(_ values: [T], _ weights: [Double]) -> T {
            var draw = random.nextDouble() * weights.reduce(0, +), i = 0
            while draw >= weights[i] && i < values.count - 1 { draw -= weights[i]; i += 1 }
            return values[i]
        }
        /// Zipf with s uniform in low..<low + span, to two decimals.
        func zipf(_ low: Double, span: Double) -> IndexDistribution { .zipf(((low + span * random.nextDouble()) * 100).rounded() / 100) }
        /// 10^e rows, e uniform in low..<low + span.
        func logUniform(_ low: Double, span: Double) -> Int { Int(pow(10, low + span * random.nextDouble()).rounded()) }
        /// Log-normal pooling: `median` × e^(sigma × N(0, 1)), rounded, between 1 and `cap`.
        func pooling(median: Double, sigma: Double, cap: Double) -> Double { min(cap, max(1, (median * exp(sigma * random.nextGaussian())).rounded())) }
        return try (0..<count).map { i throws(PlanError) in
            switch shape {
            case .dlrm:
                let rows = logUniform(2, span: 4)
                let pooling = pooling(median: 9, sigma: 1, cap: 200)
                let dim = pick([4, 8, 16, 32, 64, 128], [1, 2, 3, 3, 2, 1])
                let distribution = random.nextDouble() < 1.0 / 3 ? IndexDistribution.uniform : zipf(0.5, span: 0.7)
                return try TableSpec(name: "pool\(i)", rows: rows, dim: dim, poolingFactor: pooling, distribution: distribution)
            case .heavyTailed:
                let kind = random.nextDouble()
                if kind < 0.05 {
                    return try TableSpec(name: "heavy\(i)", rows: logUniform(6, span: log10(4)), dim: pick([16, 32, 64], [1, 2, 1]),
                                         poolingFactor: pooling(median: 4, sigma: 1.5, cap: 300), distribution: zipf(0.9, span: 0.4))
                }
                if kind < 0.65 {
                    // Tiny tables are often one-hot categorical features: one lookup per sample.
                    let oneHot = random.nextDouble() < 0.5
                    return try TableSpec(name: "heavy\(i)", rows: logUniform(1, span: 2), dim: pick([4, 8, 16], [2, 2, 1]),
                                         poolingFactor: oneHot ? 1 : pooling(median: 4, sigma: 1.5, cap: 300),
                                         distribution: random.nextDouble() < 0.5 ? .uniform : zipf(0.5, span: 0.7))
                }
                return try TableSpec(name: "heavy\(i)", rows: logUniform(3, span: 3), dim: pick([8, 16, 32, 64, 128], [2, 3, 3, 2, 1]),
                                     poolingFactor: pooling(median: 4, sigma: 1.5, cap: 300),
                                     distribution: random.nextDouble() < 1.0 / 3 ? .uniform : zipf(0.5, span: 0.7))
            }
        }
    }

    /// Which tables of `pool` are held out for evaluation: a fraction, chosen by the seed, so
    /// planners are evaluated on tables their models never saw.
    public static func split(_ pool: [TableSpec], heldOutFraction: Double = 0.25, seed: UInt64) -> (train: [TableSpec], heldOut: [TableSpec]) {
        var random = SplitMix64(seed: seed, stream: "pool-split")
        let order = pool.indices.shuffled(using: &random)
        let heldOut = Set(order.prefix(Int((Double(pool.count) * heldOutFraction).rounded())))
        return (pool.indices.filter { !heldOut.contains($0) }.map { pool[$0] }, heldOut.sorted().map { pool[$0] })
    }
}

/// The sharding benchmark sets of BENCHMARKS.md: tables per task, ranks, and each rank's
/// memory as a fraction of the task's total table bytes.
public struct TaskPreset: Sendable {
    public var name: String
    public var tables: ClosedRange<Int>
    public var ranks: Int
    public var memoryFraction: Double
    /// Whether a task may hold tables larger than a rank, which every planner must then cut by
    /// rows (else such a draw is drawn again).
    public var cutsRows: Bool

    public init(name: String, tables: ClosedRange<Int>, ranks: Int, memoryFraction: Double, cutsRows: Bool = false) {
        self.name = name
        self.tables = tables
        self.ranks = ranks
        self.memoryFraction = memoryFraction
        self.cutsRows = cutsRows
    }

    public static let all = [
        TaskPreset(name: "shard-small", tables: 10...30, ranks: 2, memoryFraction: 0.60),
        TaskPreset(name: "shard-mid", tables: 30...60, ranks: 4, memoryFraction: 0.35),
        TaskPreset(name: "shard-large", tables: 100...200, ranks: 8, memoryFraction: 0.20),
        /// For a heavy-tailed pool (`TablePool.Shape.heavyTailed`), whose huge tables hold most
        /// of a task's bytes and often outgrow a rank.
        TaskPreset(name: "shard-heavy", tables: 30...60, ranks: 4, memoryFraction: 0.35, cutsRows: true),
    ]

    public static func named(_ name: String) throws(PlanError) -> TaskPreset {
        guard let preset = all.first(where: { $0.name == name }) else {
            throw PlanError("no task preset '\(name)' (\(all.map(\.name).joined(separator: ", ")))")
        }
        return preset
    }

    /// `count` tasks drawn from `tables` (with repetition across tasks, not within one); unless
    /// the preset `cutsRows`, a draw whose largest table exceeds a rank's memory is drawn again.
    public func draw(count: Int, from tables: [TableSpec], batchSize: Int, optimizer: EmbeddingOptimizer = .sgd,
                     seed: UInt64) throws(PlanError) -> [PlanningTask] {
        guard ranks >= 1 else { throw PlanError("a task needs at least 1 rank") }
        guard tables.count >= self.tables.lowerBound else {
            throw PlanError("\(name) needs at least \(self.tables.lowerBound) tables; the pool split has \(tables.count)")
        }
        var random = SplitMix64(seed: seed, stream: "tasks-" + name)
        var tasks: [PlanningTask] = []
        var attempts = 0
        while tasks.count < count {
            attempts += 1
            guard attempts <= 100 * count else { throw PlanError("\(name): cannot draw tasks whose largest table fits a rank's memory") }
            let size = self.tables.lowerBound + random.nextInt(below: min(self.tables.upperBound, tables.count) - self.tables.lowerBound + 1)
            let chosen = Array(tables.indices.shuffled(using: &random).prefix(size)).sorted().map { tables[$0] }
            let bytes = chosen.map { $0.bytes(columns: $0.dim, optimizer: optimizer) }
            let memory = Int(Double(bytes.reduce(0, +)) * memoryFraction)
            guard cutsRows || bytes.max()! <= memory else { continue }
            tasks.append(PlanningTask(tables: chosen, ranks: ranks, memoryPerRank: memory, batchSize: batchSize, optimizer: optimizer))
        }
        return tasks
    }
}
