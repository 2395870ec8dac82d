import Foundation
import Models

/// The measured cost of a plan on this machine. For each rank in turn, on this thread: its
/// shards are built, a global batch is drawn from the tables' access patterns, and one fused
/// embedding-bag forward and one backward with sparse SGD update are timed, each the median of
/// `iterations` after `warmup` runs, with the caches flushed before every run. Communication
/// comes from the calibrated all-to-all model. Plan cost = max over ranks of the sum.
public struct CostOracle: PlanCostModel {
    public var batchSize: Int
    public var communication: AlltoallCostModel
    public var seed: UInt64
    public var warmup = 2
    public var iterations = 11

    public init(batchSize: Int, communication: AlltoallCostModel, seed: UInt64 = 0) {
        self.batchSize = batchSize
        self.communication = communication
        self.seed = seed
    }

    public func cost(of plan: ShardingPlan, tables: [TableSpec]) throws(PlanError) -> PlanCost {
        try plan.validate(tables: tables)
        let byRank = plan.shardsByRank(tables: tables)
        let comms = communication.communication(byRank: byRank, tables: tables, batchSize: batchSize)
        return PlanCost(ranks: zip(byRank, comms).map { shards, comm in
            let compute = measure(shards, tables: tables)
            return RankCost(forward: compute.forward, backward: compute.backward, communication: comm)
        })
    }

    /// Milliseconds of one forward and one backward-with-update of `shards` over a global batch.
    public func measure(_ shards: [EmbeddingShardSpec], tables: [TableSpec]) -> (forward: Double, backward: Double) {
        guard !shards.isEmpty else { return (0, 0) }
        let used = Array(Set(shards.map(\.table))).sorted()
        let batch = TableAccess.batch(used.map { tables[$0] }, batchSize: batchSize, seed: seed)
        let collection = EmbeddingBagCollection(tables: tables.map(\.embedding), shards: shards, features: used,
                                                optimizer: .sgd, seed: seed)
        let count = batchSize * collection.outputWidth
        let output = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let gradient = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer {
            output.deallocate()
            gradient.deallocate()
        }
        gradient.initialize(repeating: 1e-6, count: count)
        var forward: [Double] = [], backward: [Double] = []
        for run in 0..<(warmup + iterations) {
            CacheFlush.shared.flush()
            let start = ContinuousClock.now
            collection.forward(batch, into: output)
            let middle = ContinuousClock.now
            CacheFlush.shared.flush()
            let resumed = ContinuousClock.now
            collection.backwardAndUpdate(batch, outputGradient: gradient, learningRate: 1e-3)
            let end = ContinuousClock.now
            if run >= warmup {
                forward.append((middle - start).seconds * 1000)
                backward.append((end - resumed).seconds * 1000)
            }
        }
        return (median(forward), median(backward))
    }
}

/// Evicts the caches by writing a buffer larger than the last-level cache.
final class CacheFlush: @unchecked Sendable {
    static let shared = CacheFlush()
    /// Twice the L3 a core can use, up to 64 MiB (VMs often report the whole socket's L3).
    private let bytes = min(64 << 20, max(32 << 20, 2 * sysconf(Int32(_SC_LEVEL3_CACHE_SIZE))))
    private let buffer: UnsafeMutablePointer<UInt8>
    private let lock = NSLock()
    private var value: UInt8 = 0

    private init() {
        buffer = .allocate(capacity: bytes)
        buffer.initialize(repeating: 0, count: bytes)
    }

    func flush() {
        lock.lock()
        defer { lock.unlock() }
        value &+= 1
        buffer.update(repeating: value, count: bytes)
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
