import Foundation
import Models

/// Synthetic embedding tables whose statistics resemble the public DLRM traces: hash sizes
/// spread over four decades (10^2 to 10^6 rows, log-uniform), pooling factors log-normal with
/// mean near 15 and a long tail (1 to 200), dims 4 to 128 (powers of two, small ones more
/// common), and access skew from uniform (a third of the tables) to Zipf with s up to 1.2.
public enum TablePool {
    public static func generate(count: Int, seed: UInt64) throws(PlanError) -> [TableSpec] {
        guard count >= 1 else { throw PlanError("--count must be at least 1") }
        var random = SplitMix64(seed: seed, stream: "table-pool")
        let dims = [4, 8, 16, 32, 64, 128], dimWeights = [1.0, 2, 3, 3, 2, 1]
        return try (0..<count).map { i throws(PlanError) in
            let rows = Int(pow(10, 2 + 4 * random.nextDouble()).rounded())
            let pooling = min(200, max(1, (9 * exp(random.nextGaussian())).rounded()))
            var pick = random.nextDouble() * dimWeights.reduce(0, +), d = 0
            while pick >= dimWeights[d] && d < dims.count - 1 { pick -= dimWeights[d]; d += 1 }
            let distribution: IndexDistribution = random.nextDouble() < 1.0 / 3 ? .uniform
                : .zipf(((0.5 + 0.7 * random.nextDouble()) * 100).rounded() / 100)
            return try TableSpec(name: "pool\(i)", rows: rows, dim: dims[d], poolingFactor: pooling, distribution: distribution)
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

    public init(name: String, tables: ClosedRange<Int>, ranks: Int, memoryFraction: Double) {
        self.name = name
        self.tables = tables
        self.ranks = ranks
        self.memoryFraction = memoryFraction
    }

    public static let all = [
        TaskPreset(name: "shard-small", tables: 10...30, ranks: 2, memoryFraction: 0.60),
        TaskPreset(name: "shard-mid", tables: 30...60, ranks: 4, memoryFraction: 0.35),
        TaskPreset(name: "shard-large", tables: 100...200, ranks: 8, memoryFraction: 0.20),
    ]

    public static func named(_ name: String) throws(PlanError) -> TaskPreset {
        guard let preset = all.first(where: { $0.name == name }) else {
            throw PlanError("no task preset '\(name)' (\(all.map(\.name).joined(separator: ", ")))")
        }
        return preset
    }

    /// `count` tasks drawn from `tables` (with repetition across tasks, not within one); a draw
    /// whose largest table exceeds a rank's memory is drawn again.
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
            guard bytes.max()! <= memory else { continue }
            tasks.append(PlanningTask(tables: chosen, ranks: ranks, memoryPerRank: memory, batchSize: batchSize, optimizer: optimizer))
        }
        return tasks
    }
}
