import Foundation
import Models

/// A fixed embedding workload that the cost oracle times in every round beside the shards it
/// measures. On a shared machine, slow spells (other tenants on the memory bus, steal time)
/// stretch a whole round alike: repeat measurements of the same shard set drift by about 15%
/// between runs while their ratios within a round hold to a few percent. Scaling each round
/// by `milliseconds` / (the reference's time in that round) expresses every cost at the
/// machine's typical speed, so costs measured minutes apart can be compared and learned.
public struct SpeedReference: Codable, Sendable {
    public static let formatVersion = 1
    /// The reference's batch size, whatever the batch of the shards measured beside it.
    public static let batchSize = 512

    public var formatVersion = Self.formatVersion
    /// The reference's typical forward + backward milliseconds on the wall clock: its median
    /// over many rounds.
    public var milliseconds: Double
    /// The same in per-thread CPU time, timed in the same rounds; nil in references written
    /// before the oracle timed CPU time.
    public var cpuMilliseconds: Double?
    /// Rounds that median was taken over.
    public var rounds: Int
    /// The machine it was measured on (nil: a reference from before fingerprints).
    public var hardware: HardwareFingerprint?

    public init(milliseconds: Double, cpuMilliseconds: Double?, rounds: Int) {
        self.milliseconds = milliseconds
        self.cpuMilliseconds = cpuMilliseconds
        self.rounds = rounds
    }

    /// The typical time on `clock`, if this reference has it.
    public func milliseconds(on clock: CostOracle.Clock) -> Double? {
        switch clock {
        case .wall: milliseconds
        case .cpu: cpuMilliseconds
        }
    }

    /// Four tables from DRAM-bound to cache-resident, uniform and skewed: the mix a rank holds.
    public static let tables: [TableSpec] = [
        (500_000, 32, 12.0, IndexDistribution.uniform), (50_000, 32, 20.0, .zipf(1.05)),
        (5_000, 64, 8.0, .zipf(1.2)), (500, 128, 4.0, .uniform),
    ].enumerated().map { i, table in
        try! TableSpec(name: "reference.\(i)", rows: table.0, dim: table.1, poolingFactor: table.2, distribution: table.3)
    }

    /// The reference workload over `batches` batches, ready to be timed.
    static func bench(batches: Int = 1) -> ShardBench {
        ShardBench(tables.indices.map { EmbeddingShardSpec(table: $0, columns: 0..<tables[$0].dim) }, tables: tables,
                   batchSize: batchSize, seed: 0, batches: batches)!
    }

    /// Times the reference on both clocks for `rounds` rounds and keeps the medians. Each
    /// round also runs a second copy, as the oracle runs the reference beside other shards:
    /// alone, a workload measures about a third faster than in company, even with the caches
    /// flushed.
    public static func measure(rounds: Int) -> SpeedReference {
        let reference = bench(), company = bench()
        let times = (0..<rounds).map { _ in
            defer { _ = company.run() }
            return reference.run()
        }
        return SpeedReference(milliseconds: median(times.map { $0.total(on: .wall) }), cpuMilliseconds: median(times.map { $0.total(on: .cpu) }),
                              rounds: rounds)
    }

    public func write(to path: String) throws(PlanError) {
        do { try JSONFile.write(self, to: path) } catch { throw PlanError(error.description) }
    }

    public static func read(_ path: String) throws(PlanError) -> SpeedReference {
        let reference = try VersionedFile.read(SpeedReference.self, from: path, kind: "speed reference", formatVersion: formatVersion)
        for time in [reference.milliseconds, reference.cpuMilliseconds ?? 1] where !(time > 0 && time.isFinite) {
            throw PlanError("\(path): speed reference of \(time) ms; it must be positive")
        }
        return reference
    }

    /// The reference measured on this machine that ships with MPITrain.
    public static func shipped() throws(PlanError) -> SpeedReference {
        try read(ShippedResources.file("speed-reference", kind: "speed reference"))
    }
}
