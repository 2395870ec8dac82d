import Foundation
import Models

/// All-to-all time as a function of the bytes one rank sends, interpolated (log-log) in tables
/// that `mpitrain bench comm --json` measured on this machine, one per rank count.
///
/// In a DLRM step rank r sends its pooled outputs (batch x Σ dims of its shards x 4 bytes)
/// forward and receives their gradients backward, and receives the indices of its tables
/// before the forward; `communication(...)` prices those three exchanges.
public struct AlltoallCostModel: Sendable {
    /// Per rank count, (bytes, microseconds) points in increasing bytes.
    public private(set) var tables: [Int: [(bytes: Double, microseconds: Double)]]

    public init(tables: [Int: [(bytes: Double, microseconds: Double)]]) { self.tables = tables }

    /// Reads reports written by `mpitrain bench comm --json`.
    public init(reports paths: [String]) throws(PlanError) {
        struct Report: Decodable {
            struct Row: Decodable { let operation: String; let bytes: Double; let averageMicroseconds: Double }
            let ranks: Int
            let rows: [Row]
        }
        var tables: [Int: [(bytes: Double, microseconds: Double)]] = [:]
        for path in paths {
            let report: Report
            do { report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: path))) }
            catch { throw PlanError("\(path): not a bench comm report (\(JSONProblem.describe(error)))") }
            let points = report.rows.filter { $0.operation == "alltoall" && $0.bytes > 0 && $0.averageMicroseconds > 0 }
                .map { (bytes: $0.bytes, microseconds: $0.averageMicroseconds) }.sorted { $0.bytes < $1.bytes }
            guard points.count >= 2 else { throw PlanError("\(path): fewer than two alltoall rows") }
            tables[report.ranks] = points
        }
        self.tables = tables
    }

    /// The calibration that ships with MPITrain (`Sources/Sharding/Resources/comm-*.json`).
    public static func shipped() throws(PlanError) -> AlltoallCostModel {
        let paths = Bundle.module.paths(forResourcesOfType: "json", inDirectory: nil)
            .filter { ($0 as NSString).lastPathComponent.hasPrefix("comm-") }.sorted()
        guard !paths.isEmpty else { throw PlanError("no all-to-all calibration ships with this build") }
        return try AlltoallCostModel(reports: paths)
    }

    /// Milliseconds for an all-to-all in which this rank sends `bytes` over `ranks` ranks. A
    /// rank count without its own table uses the nearest measured one.
    public func milliseconds(bytes: Double, ranks: Int) -> Double {
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

    /// Communication of each rank in a step over `batchSize` samples: indices in, pooled
    /// vectors out, their gradients back.
    public func communication(byRank shards: [[EmbeddingShardSpec]], tables: [TableSpec], batchSize: Int) -> [Double] {
        shards.map { mine in
            rank(width: mine.reduce(0) { $0 + $1.columns.count }, lookups: Set(mine.map(\.table)).reduce(0.0) { $0 + tables[$1].poolingFactor },
                 ranks: shards.count, batchSize: batchSize)
        }
    }

    /// Milliseconds of one rank's exchanges in a step: it owns `width` columns in all, of
    /// tables whose pooling factors sum to `lookups`.
    public func rank(width: Int, lookups: Double, ranks: Int, batchSize: Int) -> Double {
        guard width > 0 else { return 0 }
        let pooled = Double(batchSize * width * MemoryLayout<Float>.size)
        let indices = Double(batchSize) * (lookups + 1) * Double(MemoryLayout<Int32>.size)
        return milliseconds(bytes: indices, ranks: ranks) + 2 * milliseconds(bytes: pooled, ranks: ranks)
    }
}
