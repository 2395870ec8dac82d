import Foundation
import Models

/// The measured cost of a plan on this machine. Every rank's shards are built and fed a global
/// batch drawn from the tables' access patterns; then, round by round, each rank in turn runs
/// one fused embedding-bag forward and one backward with sparse SGD update on this thread, with
/// the caches flushed before each. A rank's time is its median over `iterations` rounds after
/// `warmup`; interleaving the ranks lets a slow spell of a shared machine touch them all alike.
/// With a `speedReference`, its workload runs at both ends of every round and each round's
/// times are scaled to the machine's typical speed (see `SpeedReference`); without one, raw.
/// Communication comes from the calibrated all-to-all model. Plan cost = max over ranks.
public struct CostOracle: PlanCostModel {
    public var batchSize: Int
    public var communication: CommunicationCostModel
    public var seed: UInt64
    public var warmup = 2
    public var iterations = 11
    public let speedReference: SpeedReference?
    private let referenceBench: ShardBench?

    public init(batchSize: Int, communication: CommunicationCostModel, seed: UInt64 = 0, speedReference: SpeedReference? = nil) {
        self.batchSize = batchSize
        self.communication = communication
        self.seed = seed
        self.speedReference = speedReference
        referenceBench = speedReference.map { _ in SpeedReference.bench() }
    }

    /// Milliseconds of one forward and one backward-with-update of each rank's shard set over a
    /// global batch, measured in interleaved rounds.
    public func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)] {
        measure(byRank.map { ShardBench($0, tables: tables, batchSize: batchSize, seed: seed) })
    }

    /// Milliseconds of one rank's replicas over its share of a global batch: their forward,
    /// and their backward with the update of the rows that rank's samples used. (The trainer
    /// updates the rows every rank used, after summing over ranks; the allreduce is priced as
    /// communication.)
    public func replicaCompute(_ replicated: [Int], tables: [TableSpec], ranks: Int) -> (forward: Double, backward: Double) {
        guard !replicated.isEmpty else { return (0, 0) }
        let shards = replicated.map { EmbeddingShardSpec(table: $0, columns: 0..<tables[$0].dim) }
        return measure([ShardBench(shards, tables: tables, batchSize: max(1, batchSize / ranks), seed: seed)])[0]
    }

    /// Medians of `benches` run in interleaved rounds, scaled by the speed reference when there is one.
    private func measure(_ benches: [ShardBench?]) -> [(forward: Double, backward: Double)] {
        var forward = [[Double]](repeating: [], count: benches.count), backward = forward
        for run in 0..<(warmup + iterations) {
            let before = referenceBench?.run()
            let times = benches.map { $0?.run() }
            guard run >= warmup else { continue }
            // The reference runs at both ends of the round, so drift within the round averages out.
            var speed = 1.0
            if let speedReference, let before, let after = referenceBench?.run() {
                speed = 2 * speedReference.milliseconds / (before.forward + before.backward + after.forward + after.backward)
            }
            for (rank, time) in times.enumerated() {
                guard let time else { continue }
                forward[rank].append(time.forward * speed)
                backward[rank].append(time.backward * speed)
            }
        }
        return benches.indices.map { (median(forward[$0]), median(backward[$0])) }
    }
}

/// A set of shards, their batch and buffers, ready to be timed.
final class ShardBench {
    let collection: EmbeddingBagCollection
    let batch: BagBatch
    let output: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>

    init?(_ shards: [EmbeddingShardSpec], tables: [TableSpec], batchSize: Int, seed: UInt64) {
        guard !shards.isEmpty else { return nil }
        let inputs = Array(Set(shards.map(\.input))).sorted()
        batch = TableSpec.batch(tables, inputs: inputs, batchSize: batchSize, seed: seed)
        collection = EmbeddingBagCollection(tables: tables.map(\.embedding), shards: shards, features: inputs, optimizer: .sgd, seed: seed)
        let count = batchSize * collection.outputWidth
        output = .allocate(capacity: count)
        gradient = .allocate(capacity: count)
        gradient.initialize(repeating: 1e-6, count: count)
    }

    deinit {
        output.deallocate()
        gradient.deallocate()
    }

    /// Milliseconds of one forward and one backward with update, each from cold caches.
    func run() -> (forward: Double, backward: Double) {
        CacheFlush.shared.flush()
        let start = ContinuousClock.now
        collection.forward(batch, into: output)
        let forward = (ContinuousClock.now - start).seconds * 1000
        CacheFlush.shared.flush()
        let resumed = ContinuousClock.now
        collection.backwardAndUpdate(batch, outputGradient: gradient, learningRate: 1e-3)
        return (forward, (ContinuousClock.now - resumed).seconds * 1000)
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
