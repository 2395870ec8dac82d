import Foundation
import Models

/// All-to-all and allreduce times as functions of the bytes one rank sends, interpolated
/// (log-log) in tables that `mpitrain bench comm --json` measured on this machine, one per rank
/// count and operation.
///
/// In a DLRM step rank r receives the indices of the lookups it pools before the forward, sends
/// its pooled outputs (batch × Σ widths of its shards × 4 bytes; a row-wise shard's partial sums
/// are full width) forward and receives their gradients backward: `communication(...)` prices
/// those three all-to-alls, and the allreduce that sums the gradients of replicated tables.
public struct CommunicationCostModel: Sendable {
    public typealias Points = [(bytes: Double, microseconds: Double)]
    /// Per rank count, all-to-all (bytes, microseconds) points in increasing bytes.
    public private(set) var tables: [Int: Points]
    /// The same for allreduce; empty when the calibration has no allreduce rows.
    public private(set) var allreduceTables: [Int: Points]
    /// The machine and MPI the reports were measured with (nil: reports from before fingerprints).
    public private(set) var hardware: HardwareFingerprint?

    public init(tables: [Int: Points], allreduceTables: [Int: Points] = [:]) {
        self.tables = tables
        self.allreduceTables = allreduceTables
    }

    /// Reads reports written by `mpitrain bench comm --json` (all-to-all rows needed, allreduce
    /// rows used when present).
    public init(reports paths: [String]) throws(PlanError) {
        struct Report: Decodable {
            struct Row: Decodable { let operation: String; let bytes: Double; let averageMicroseconds: Double }
            let ranks: Int
            let rows: [Row]
            let hardware: HardwareFingerprint?
        }
        var tables: [Int: Points] = [:], allreduceTables: [Int: Points] = [:]
        var fingerprint: HardwareFingerprint?
        for path in paths {
            let report: Report
            do { report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: path))) }
            catch { throw PlanError("\(path): not a bench comm report (\(JSONProblem.describe(error)))") }
            func points(_ operation: String) -> Points {
                report.rows.filter { $0.operation == operation && $0.bytes > 0 && $0.averageMicroseconds > 0 }
                    .map { (bytes: $0.bytes, microseconds: $0.averageMicroseconds) }.sorted { $0.bytes < $1.bytes }
            }
            let alltoall = points("alltoall"), allreduce = points("allreduce")
            guard alltoall.count >= 2 else { throw PlanError("\(path): fewer than two alltoall rows") }
            tables[report.ranks] = alltoall
            if allreduce.count >= 2 { allreduceTables[report.ranks] = allreduce }
            fingerprint = fingerprint ?? report.hardware
        }
        self.init(tables: tables, allreduceTables: allreduceTables)
        hardware = fingerprint
    }

    /// The calibration that ships with MPITrain (`comm-*.json` of `ShippedResources`).
    public static func shipped() throws(PlanError) -> CommunicationCostModel {
        try CommunicationCostModel(reports: shippedReports())
    }

    /// The paths of the shipped calibration's reports, one per rank count.
    public static func shippedReports() throws(PlanError) -> [String] {
        try ShippedResources.files(kind: "all-to-all calibration (comm-*.json)") { $0.hasPrefix("comm-") && $0.hasSuffix(".json") }
    }

    /// Milliseconds for an all-to-all in which this rank sends `bytes` over `ranks` ranks. A
    /// rank count without its own table uses the nearest measured one.
    public func milliseconds(bytes: Double, ranks: Int) -> Double { Self.interpolate(tables, bytes: bytes, ranks: ranks) }

    /// Milliseconds for an allreduce of `bytes` over `ranks` ranks; without allreduce rows in
    /// the calibration, approximated as two all-to-alls of those bytes (reduce-scatter, then
    /// allgather).
    public func allreduceMilliseconds(bytes: Double, ranks: Int) -> Double {
        allreduceTables.isEmpty ? 2 * milliseconds(bytes: bytes, ranks: ranks) : Self.interpolate(allreduceTables, bytes: bytes, ranks: ranks)
    }

    private static func interpolate(_ tables: [Int: Points], bytes: Double, ranks: Int) -> Double {
        guard ranks > 1, bytes > 0,
              let points = tables[ranks] ?? tables.min(by: { abs($0.key - ranks) < abs($1.key - ranks) })?.value
        else { return 0 }
        if bytes <= points[0].bytes { return points[0].microseconds / 1000 }
        if bytes >= points[points.count - 1].bytes {
            let (a, b) = (points[points.count - 2], points[points.count - 1])
            let perByte = (b.microseconds - a.microseconds) / (b.bytes - a.bytes)
            return (b.microseconds + perByte * (bytes - b.bytes)) / 1000
        }
        let upper = points.firstIndex { $0.bytes >= bytes }!
        let (a, b) = (points[upper - 1], points[upper])
        let t = log(bytes / a.bytes) / log(b.bytes / a.bytes)
        return exp(log(a.microseconds) + t * log(b.microseconds / a.microseconds)) / 1000
    }

    /// Communication of each rank in a step over `batchSize` samples: the indices of every
    /// lookup it pools in, pooled vectors out, their gradients back, and the allreduce of the
    /// `replicated` tables' gradients.
    public func communication(byRank shards: [[EmbeddingShardSpec]], replicated: [Int] = [], tables: [TableSpec], batchSize: Int) -> [Double] {
        let replicas = replicaMilliseconds(replicated.map { tables[$0] }, ranks: shards.count, batchSize: batchSize)
        return shards.map { mine in
            let inputs = Set(mine.map(\.input))
            let lookups = inputs.reduce(0.0) { $0 + tables[$1.table].share(of: $1.rows) * tables[$1.table].poolingFactor }
            return rank(width: mine.reduce(0) { $0 + $1.columns.count }, lookups: lookups, ranks: shards.count, batchSize: batchSize) + replicas
        }
    }

    /// Milliseconds of one rank's exchanges in a step: it owns `width` columns in all, fed by
    /// lookups (of tables or row ranges) whose pooling factors sum to `lookups`.
    public func rank(width: Int, lookups: Double, ranks: Int, batchSize: Int) -> Double {
        guard width > 0 else { return 0 }
        let pooled = Double(batchSize * width * MemoryLayout<Float>.size)
        let indices = Double(batchSize) * (lookups + 1) * Double(MemoryLayout<Int32>.size)
        return milliseconds(bytes: indices, ranks: ranks) + 2 * milliseconds(bytes: pooled, ranks: ranks)
    }

    /// Milliseconds of summing the replicated `tables`' gradients in one step, as the trainer
    /// does: per table, a dense allreduce of rows × dim floats or an allgather of every rank's
    /// distinct rows (at most batch / ranks × pooling each, with their index), whichever is fewer
    /// bytes; the allgather priced as an allreduce of the gathered bytes.
    public func replicaMilliseconds(_ tables: [TableSpec], ranks: Int, batchSize: Int) -> Double {
        guard ranks > 1, !tables.isEmpty else { return 0 }
        let floats = tables.reduce(0.0) { total, table in
            let distinct = min(Double(table.rows), Double(batchSize) / Double(ranks) * table.poolingFactor * (table.bagSizes == .random ? 2 : 1))
            return total + min(Double(table.rows * table.dim), Double(ranks) * distinct * Double(table.dim + 1))
        }
        return allreduceMilliseconds(bytes: floats * Double(MemoryLayout<Float>.size), ranks: ranks)
    }
}
