import Foundation
import Models

/// The measured cost of a plan on this machine. Every rank's shards are built and fed global
/// batches drawn from the tables' access patterns; then, round by round, each rank runs one
/// fused embedding-bag forward and one backward with sparse SGD update, under `conditions`.
/// A rank's time is its median over `iterations` rounds after `warmup`, on `clock`.
/// Communication comes from the calibrated all-to-all model. Plan cost = max over ranks.
public struct CostOracle: PlanCostModel {
    /// What times a rank's compute.
    public enum Clock: String, CaseIterable, Codable, Sendable {
        /// Elapsed time: what a job waits, including spells the thread was descheduled.
        case wall
        /// The thread's own running time (`CLOCK_THREAD_CPUTIME_ID`): a spell of another job
        /// on the core does not count, its traffic on the caches and memory still does.
        case cpu
    }

    /// How the ranks' shard sets run while they are timed.
    public enum Conditions: String, CaseIterable, Codable, Sendable {
        /// One rank at a time on this thread, caches flushed before each pass, one batch, timed
        /// on both clocks, each scaled by the speed reference's time on it: costs that compare
        /// across sessions, which the learned models' training records need. Interleaving the
        /// ranks lets a slow spell of a shared machine touch them all alike.
        case isolated
        /// As a training job runs them: every rank's shards on a thread of its own at once (as
        /// many at a time as there are cores), caches as the rank's previous pass left them, a
        /// fresh batch of the same traffic each round, timed in per-thread CPU time
        /// (`CLOCK_THREAD_CPUTIME_ID`): what a training run on this machine measures. Each
        /// round is scaled to the machine's typical speed over the oracle's rounds, by the speed
        /// reference's workload run on every core at both ends of the round (see
        /// `ConcurrentYardstick`).
        case concurrent
    }

    public var batchSize: Int
    public var communication: CommunicationCostModel
    public var seed: UInt64
    public var warmup = 2
    /// Rounds measured: 11 isolated, 25 concurrent (whose rounds are a few milliseconds each,
    /// and whose spread is wider, as the ranks meet on the caches and the memory bus).
    public var iterations: Int
    /// Copies of each rank's shard set, built and timed in the same rounds; a rank's time is
    /// the mean of theirs. Each build lands at other addresses, and the same shards timed in
    /// the same rounds differed by 1.0-4.3% (median over pairs) from build to build.
    public var builds = 1
    public let conditions: Conditions
    /// The clock of the oracle's costs (`compute`, `cost(of:)`); always per-thread CPU time
    /// under concurrent conditions, where threads outnumber cores. The speed reference must
    /// have a time on it.
    public let clock: Clock
    /// Scales `isolated` rounds to the machine's typical speed (see `SpeedReference`); unused
    /// by `concurrent` ones.
    public let speedReference: SpeedReference?
    private let referenceBench: ShardBench?
    private let yardstick: ConcurrentYardstick?

    public init(batchSize: Int, communication: CommunicationCostModel, seed: UInt64 = 0, speedReference: SpeedReference? = nil,
                conditions: Conditions = .isolated, clock: Clock = .cpu) {
        self.batchSize = batchSize
        self.communication = communication
        self.seed = seed
        self.conditions = conditions
        self.clock = Self.clock(clock, under: conditions)
        iterations = conditions == .isolated ? 11 : 25
        self.speedReference = conditions == .isolated ? speedReference : nil
        referenceBench = self.speedReference.map { _ in SpeedReference.bench() }
        yardstick = conditions == .concurrent ? ConcurrentYardstick() : nil
    }

    /// The speed reference's milliseconds on the oracle's clock that its costs are scaled to
    /// (nil: unscaled, or scaled by the concurrent yardstick).
    public var referenceMilliseconds: Double? { speedReference?.milliseconds(on: clock) }

    /// Milliseconds on the oracle's clock of one forward and one backward-with-update of each
    /// rank's shard set over a global batch, measured in rounds.
    public func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)] {
        measure([byRank], tables: tables)[clock]![0]
    }

    /// Milliseconds of one rank's replicas over its share of a global batch: their forward,
    /// and their backward with the update of the rows that rank's samples used. (The trainer
    /// updates the rows every rank used, after summing over ranks; the allreduce is priced as
    /// communication.) Concurrent conditions run one copy per rank, up to the cores, and keep
    /// their median.
    public func replicaCompute(_ replicated: [Int], tables: [TableSpec], ranks: Int) -> (forward: Double, backward: Double) {
        replicaTimes(replicated, tables: tables, ranks: ranks)[clock]!
    }

    /// The clock of costs asked for on `requested` under `conditions`: per-thread CPU time
    /// whenever the ranks run at once.
    public static func clock(_ requested: Clock, under conditions: Conditions) -> Clock {
        conditions == .concurrent ? .cpu : requested
    }

    /// The clocks whose times the oracle keeps: both under isolated conditions, each scaled by
    /// the speed reference's time on it; per-thread CPU time alone under concurrent ones.
    public var clocks: [Clock] { conditions == .isolated ? Clock.allCases : [.cpu] }

    /// `plan`'s cost on every clock of `clocks`, all from the same rounds: what the oracle's
    /// own clock measures, and beside it what the other would have.
    public func costOnEveryClock(of plan: ShardingPlan, tables: [TableSpec]) throws(PlanError) -> [Clock: PlanCost] {
        try costsOnEveryClock(of: [plan], tables: tables)[0]
    }

    /// The costs of `plans` for the same `tables`, on every clock of `clocks`, measured
    /// together: each round runs every plan's ranks, so a slow spell of the machine falls on
    /// all of them alike, and how the plans compare holds better than what each costs. The
    /// plans of a group of `jointGroups` have their shards built at once, so a group is as
    /// many as memory allows. (Replicated tables are timed plan by plan.)
    public func costsOnEveryClock(of plans: [ShardingPlan], tables: [TableSpec]) throws(PlanError) -> [[Clock: PlanCost]] {
        for plan in plans { try plan.validate(tables: tables) }
        var costs: [[Clock: PlanCost]] = []
        for group in jointGroups(count: plans.count, tables: tables) {
            let compute = measure(plans[group].map { $0.shardsByRank(tables: tables) }, tables: tables)
            for (k, plan) in plans[group].enumerated() {
                let replicas = replicaTimes(plan.replicatedTables(tables: tables), tables: tables, ranks: plan.ranks)
                var byClock: [Clock: PlanCost] = [:]
                for clock in clocks {
                    byClock[clock] = try Measured(batchSize: batchSize, communication: communication, times: compute[clock]![k],
                                                  replicas: replicas[clock]!).cost(of: plan, tables: tables)
                }
                costs.append(byClock)
            }
        }
        return costs
    }

    /// The costs of `plans` on the oracle's clock, measured together (see
    /// `costsOnEveryClock(of:tables:)`).
    public func costs(of plans: [ShardingPlan], tables: [TableSpec]) throws(PlanError) -> [PlanCost] {
        try costsOnEveryClock(of: plans, tables: tables).map { $0[clock]! }
    }

    /// Each plan's ranks' times (`byPlan`: each plan's shards by rank), on each clock: every
    /// rank's shards built `builds` times, all benches timed in the same rounds, and a rank's
    /// time the mean over its builds.
    private func measure(_ byPlan: [[[EmbeddingShardSpec]]], tables: [TableSpec]) -> [Clock: [[(forward: Double, backward: Double)]]] {
        let copies = max(1, builds)
        let shardSets = byPlan.flatMap { byRank in (0..<copies).flatMap { _ in byRank } }
        let times = measure(benches(shardSets, tables: tables))
        return times.mapValues { times in
            var first = 0
            return byPlan.map { byRank in
                defer { first += copies * byRank.count }
                return byRank.indices.map { r in
                    let builds = (0..<copies).map { times[first + $0 * byRank.count + r] }
                    return (builds.reduce(0) { $0 + $1.forward } / Double(copies), builds.reduce(0) { $0 + $1.backward } / Double(copies))
                }
            }
        }
    }

    /// Measures `plans` (nil ones skipped) in `passes` passes: in each, the plans together,
    /// starting one plan later than the pass before, so none is always first. Hands every
    /// measurement to `each` with its plan's index, pass by pass.
    public func measureInPasses(_ plans: [ShardingPlan?], tables: [TableSpec], passes: Int,
                                each: (Int, [Clock: PlanCost]) throws -> Void) throws {
        for pass in 0..<passes {
            let order = plans.indices.map { ($0 + pass) % plans.count }.filter { plans[$0] != nil }
            for (i, costs) in zip(order, try costsOnEveryClock(of: order.map { plans[$0]! }, tables: tables)) { try each(i, costs) }
        }
    }

    /// `count` plans of `tables` in consecutive groups to measure together: under isolated
    /// conditions, as many as keep the group's shards (every build of a plan holds the tables
    /// once, with the sparse SGD the oracle runs) within a third of `memoryBytes`; under concurrent ones, one plan each, since there
    /// a plan's ranks run as its training job would run them, beside each other.
    public func jointGroups(count: Int, tables: [TableSpec], memoryBytes: UInt64 = ProcessInfo.processInfo.physicalMemory) -> [Range<Int>] {
        let perPlan = max(1, max(1, builds) * tables.reduce(0) { $0 + $1.bytes(columns: $1.dim, optimizer: .sgd) })
        let size = conditions == .concurrent ? 1 : max(1, Int(memoryBytes / 3) / perPlan)
        return stride(from: 0, to: count, by: size).map { $0 ..< min($0 + size, count) }
    }

    /// Times measured already, as a cost model, so a plan's cost is put together one way.
    private struct Measured: PlanCostModel {
        var batchSize: Int
        var communication: CommunicationCostModel
        var times: [(forward: Double, backward: Double)]
        var replicas: (forward: Double, backward: Double)

        func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)] { times }
        func replicaCompute(_ replicated: [Int], tables: [TableSpec], ranks: Int) -> (forward: Double, backward: Double) { replicas }
    }

    private func benches(_ byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [ShardBench?] {
        byRank.map { ShardBench($0, tables: tables, batchSize: batchSize, seed: seed, batches: batches) }
    }

    private func replicaTimes(_ replicated: [Int], tables: [TableSpec], ranks: Int) -> [Clock: (forward: Double, backward: Double)] {
        guard !replicated.isEmpty else { return Dictionary(uniqueKeysWithValues: clocks.map { ($0, (0, 0)) }) }
        let shards = replicated.map { EmbeddingShardSpec(table: $0, columns: 0..<tables[$0].dim) }
        let copies = conditions == .isolated ? 1 : min(ranks, ProcessInfo.processInfo.activeProcessorCount)
        return measure((0..<copies).map { _ in
            ShardBench(shards, tables: tables, batchSize: max(1, batchSize / ranks), seed: seed, batches: batches)
        }).mapValues { times in (median(times.map(\.forward)), median(times.map(\.backward))) }
    }

    /// Distinct batches each bench draws: one under isolated conditions (the flush makes them
    /// alike), one per round under concurrent ones, as training never repeats a batch.
    private var batches: Int { conditions == .isolated ? 1 : warmup + iterations }

    /// One round: each bench's times, and the reference workload's time in the round on each
    /// clock it has (the mean of its runs at both ends, so drift within the round averages out).
    private typealias Round = (times: [BenchTimes?], reference: [Clock: Double])

    /// Medians of `benches` run in rounds under `conditions`, on each clock of `clocks`, each
    /// round scaled by its reference time: to the speed reference's milliseconds (isolated) or
    /// the yardstick's typical time (concurrent). Without a reference, times are unscaled.
    private func measure(_ benches: [ShardBench?]) -> [Clock: [(forward: Double, backward: Double)]] {
        var rounds: [Round] = []
        for round in 0..<(warmup + iterations) {
            let measured = conditions == .isolated ? isolatedRound(benches) : concurrentRound(benches, round: round)
            if round >= warmup { rounds.append(measured) }
        }
        var result: [Clock: [(forward: Double, backward: Double)]] = [:]
        for clock in clocks {
            let references = rounds.compactMap { $0.reference[clock] }
            let scales = if references.count < rounds.count { rounds.map { _ in 1.0 } }
                else if let yardstick { yardstick.scales(references) }
                else if let typical = speedReference?.milliseconds(on: clock) { references.map { typical / $0 } }
                else { rounds.map { _ in 1.0 } }
            result[clock] = benches.indices.map { rank in
                let scaled = rounds.indices.compactMap { round in rounds[round].times[rank].map { ($0[clock], scales[round]) } }
                return (median(scaled.map { $0.0.forward * $0.1 }), median(scaled.map { $0.0.backward * $0.1 }))
            }
        }
        return result
    }

    /// Each bench in turn from cold caches, between two runs of the speed reference's workload.
    private func isolatedRound(_ benches: [ShardBench?]) -> Round {
        let before = referenceBench?.run()
        let times = benches.map { $0?.run() }
        guard let before, let after = referenceBench?.run() else { return (times, [:]) }
        return (times, Dictionary(uniqueKeysWithValues: Clock.allCases.map { ($0, (before.total(on: $0) + after.total(on: $0)) / 2) }))
    }

    /// Every bench at once on threads of its own, in per-thread CPU time, between two runs of
    /// the yardstick.
    private func concurrentRound(_ benches: [ShardBench?], round: Int) -> Round {
        let before = yardstick?.run()
        var times = [BenchTimes?](repeating: nil, count: benches.count)
        times.withUnsafeMutableBufferPointer { times in
            parallelFor(benches.count) { rank in times[rank] = benches[rank]?.run(round: round, cold: false) }
        }
        guard let yardstick, let before else { return (times, [:]) }
        return (times, [.cpu: (before + yardstick.run()) / 2])
    }
}

/// One forward and one backward with update, timed on both clocks at once, in milliseconds.
struct BenchTimes {
    var wall: (forward: Double, backward: Double)
    var cpu: (forward: Double, backward: Double)

    subscript(clock: CostOracle.Clock) -> (forward: Double, backward: Double) { clock == .wall ? wall : cpu }

    func total(on clock: CostOracle.Clock) -> Double { self[clock].forward + self[clock].backward }
}

/// The concurrent oracle's yardstick: the speed reference's workload, one copy per core run at
/// once from flushed caches at both ends of every round. A shared machine's slow spells
/// stretch a whole round alike; scaling each round by the yardstick's typical time over its
/// time in that round brings the shards' times to the machine's typical speed, so plans
/// measured minutes apart compare. Typical is the median over every round this oracle has run,
/// so the scales of its first plan centre on 1 and the level stays that of the rounds
/// themselves. (Anchored to runs of its own before the first round, it scaled the oracle 27%
/// below training: the yardstick runs slower beside the shards than alone.)
final class ConcurrentYardstick {
    private let benches: [ShardBench]
    private var runs = 0
    /// The yardstick's time in every round so far.
    private var history: [Double] = []

    init(cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        benches = (0..<max(1, cores)).map { _ in SpeedReference.bench(batches: 4) }
    }

    /// Every copy at once from flushed caches: the mean over copies of one forward and
    /// backward, in CPU milliseconds.
    func run() -> Double {
        runs += 1
        CacheFlush.shared.flush()
        var times = [Double](repeating: 0, count: benches.count)
        times.withUnsafeMutableBufferPointer { times in
            parallelFor(benches.count) { copy in
                times[copy] = benches[copy].run(round: runs, cold: false).total(on: .cpu)
            }
        }
        return times.reduce(0, +) / Double(times.count)
    }

    /// Each round's scale: typical (over these rounds and every earlier one) over its time.
    func scales(_ rounds: [Double]) -> [Double] {
        history += rounds
        let typical = median(history)
        return rounds.map { typical / $0 }
    }
}

/// A set of shards, their batches and buffers, ready to be timed.
final class ShardBench {
    let collection: EmbeddingBagCollection
    let batches: [BagBatch]
    let output: UnsafeMutablePointer<Float>
    let gradient: UnsafeMutablePointer<Float>

    /// `batches` distinct batches of the same traffic (`TableSpec.batch`'s rounds).
    init?(_ shards: [EmbeddingShardSpec], tables: [TableSpec], batchSize: Int, seed: UInt64, batches: Int = 1) {
        guard !shards.isEmpty else { return nil }
        let inputs = Array(Set(shards.map(\.input))).sorted()
        self.batches = (0..<batches).map { TableSpec.batch(tables, inputs: inputs, batchSize: batchSize, seed: seed, round: $0) }
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

    /// Milliseconds on both clocks of one forward and one backward with update over batch
    /// `round` (modulo the batches held): each from cold caches when `cold`, else as the
    /// caches are.
    func run(round: Int = 0, cold: Bool = true) -> BenchTimes {
        let batch = batches[round % batches.count]
        func timed(_ body: () -> Void) -> (wall: Double, cpu: Double) {
            if cold { CacheFlush.shared.flush() }
            let start = ContinuousClock.now, cpuStart = KernelTimer.threadCPUSeconds()
            body()
            let cpu = KernelTimer.threadCPUSeconds() - cpuStart
            return ((ContinuousClock.now - start).seconds * 1000, cpu * 1000)
        }
        let forward = timed { collection.forward(batch, into: output) }
        let backward = timed { collection.backwardAndUpdate(batch, outputGradient: gradient, learningRate: 1e-3) }
        return BenchTimes(wall: (forward.wall, backward.wall), cpu: (forward.cpu, backward.cpu))
    }
}

/// The machine's caches, as the system reports them.
public enum MachineCaches {
    /// The last-level (L3) cache in bytes, from sysconf; 32 MiB where the system does not say.
    public static let lastLevelBytes: Int = {
        let bytes = sysconf(Int32(_SC_LEVEL3_CACHE_SIZE))
        return bytes > 0 ? bytes : 32 << 20
    }()
}

/// Evicts the caches by writing a buffer larger than the last-level cache.
final class CacheFlush: @unchecked Sendable {
    static let shared = CacheFlush()
    /// Twice the L3 a core can use, up to 64 MiB (VMs often report the whole socket's L3).
    private let bytes = min(64 << 20, max(32 << 20, 2 * MachineCaches.lastLevelBytes))
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
