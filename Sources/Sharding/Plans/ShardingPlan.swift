import Foundation
import Models

/// Where every embedding table goes: whole on one rank (table-wise) or cut into column ranges
/// on several ranks (column-wise). Tables are named, so a plan can be checked against the specs
/// it is used with. JSON with a format version.
public struct ShardingPlan: Codable, Hashable, Sendable {
    public static let currentFormatVersion = 1

    /// One column range of a table and the rank that holds it.
    public struct Shard: Codable, Hashable, Sendable {
        public var columns: Range<Int>
        public var rank: Int

        public init(columns: Range<Int>, rank: Int) {
            self.columns = columns
            self.rank = rank
        }

        private enum CodingKeys: String, CodingKey { case columns, rank }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let bounds = try c.decode([Int].self, forKey: .columns)
            guard bounds.count == 2, bounds[0] < bounds[1] else {
                throw PlanError("columns \(bounds): expected [first, end) with first < end")
            }
            self.init(columns: bounds[0]..<bounds[1], rank: try c.decode(Int.self, forKey: .rank))
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode([columns.lowerBound, columns.upperBound], forKey: .columns)
            try c.encode(rank, forKey: .rank)
        }
    }

    /// One table's shards, in column order.
    public struct Placement: Codable, Hashable, Sendable {
        public var table: String
        public var shards: [Shard]

        public init(table: String, shards: [Shard]) {
            self.table = table
            self.shards = shards
        }

        /// Whole on one rank.
        public var isTableWise: Bool { shards.count == 1 }
    }

    public var formatVersion: Int
    public var ranks: Int
    /// The algorithm that made the plan, for reports.
    public var algorithm: String
    public var placements: [Placement]

    public init(ranks: Int, algorithm: String, placements: [Placement]) {
        formatVersion = Self.currentFormatVersion
        self.ranks = ranks
        self.algorithm = algorithm
        self.placements = placements
    }

    /// Table-wise: table i whole on `ranks[i]`.
    public init(tables: [TableSpec], rankOfTable: [Int], ranks: Int, algorithm: String) {
        self.init(ranks: ranks, algorithm: algorithm, placements: zip(tables, rankOfTable).map { table, rank in
            Placement(table: table.name, shards: [Shard(columns: 0..<table.dim, rank: rank)])
        })
    }

    /// Table i whole on rank i mod `ranks`.
    public static func roundRobin(_ tables: [TableSpec], ranks: Int) -> ShardingPlan {
        ShardingPlan(tables: tables, rankOfTable: tables.indices.map { $0 % ranks }, ranks: ranks, algorithm: "round-robin")
    }

    /// Per rank, the shards it holds as the model builds them (table index into `tables`, in
    /// table order). Call on a validated plan.
    public func shardsByRank(tables: [TableSpec]) -> [[EmbeddingShardSpec]] {
        let index = Dictionary(uniqueKeysWithValues: tables.enumerated().map { ($1.name, $0) })
        var byRank = [[EmbeddingShardSpec]](repeating: [], count: ranks)
        for placement in placements {
            guard let table = index[placement.table] else { continue }
            for shard in placement.shards { byRank[shard.rank].append(EmbeddingShardSpec(table: table, columns: shard.columns)) }
        }
        return byRank.map { $0.sorted { ($0.table, $0.columns.lowerBound) < ($1.table, $1.columns.lowerBound) } }
    }

    /// One line for logs: the tables (and column ranges) of each rank.
    public func summary(tables: [TableSpec]) -> String {
        let columnWise = placements.filter { !$0.isTableWise }.count
        let ranksText = shardsByRank(tables: tables).enumerated().map { rank, shards in
            "rank \(rank): " + (shards.isEmpty ? "none" : shards.map { shard in
                let table = tables[shard.table]
                return shard.columns.count == table.dim ? table.name
                    : "\(table.name)[\(shard.columns.lowerBound)..<\(shard.columns.upperBound)]"
            }.joined(separator: " "))
        }
        return "\(placements.count - columnWise) tables whole, \(columnWise) split by columns; " + ranksText.joined(separator: "; ")
    }

    /// Bytes each rank holds: table columns plus optimizer state.
    public func memoryByRank(tables: [TableSpec], optimizer: EmbeddingOptimizer) -> [Int] {
        var bytes = [Int](repeating: 0, count: ranks)
        for (rank, shards) in shardsByRank(tables: tables).enumerated() {
            for shard in shards { bytes[rank] += tables[shard.table].bytes(columns: shard.columns.count, optimizer: optimizer) }
        }
        return bytes
    }

    /// Checks the plan against `tables`: the format version, every table placed once and
    /// every column covered exactly once, ranks in 0..<ranks, and each rank's bytes within
    /// `memoryPerRank` (when given). The error names the table or rank at fault.
    public func validate(tables: [TableSpec], ranks expectedRanks: Int? = nil, memoryPerRank: Int? = nil,
                         optimizer: EmbeddingOptimizer = .sgd) throws(PlanError) {
        guard formatVersion == Self.currentFormatVersion else {
            throw PlanError("plan format version \(formatVersion); this build reads version \(Self.currentFormatVersion)")
        }
        guard ranks >= 1 else { throw PlanError("plan has \(ranks) ranks; needs at least 1") }
        if let expectedRanks, expectedRanks != ranks {
            throw PlanError("plan is for \(ranks) ranks, the job has \(expectedRanks)")
        }
        let byName = Dictionary(tables.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var placed = Set<String>()
        for placement in placements {
            guard let table = byName[placement.table] else { throw PlanError("plan places table \(placement.table), which is not in the table specs") }
            guard placed.insert(table.name).inserted else { throw PlanError("plan places table \(table.name) twice") }
            var next = 0
            for shard in placement.shards.sorted(by: { $0.columns.lowerBound < $1.columns.lowerBound }) {
                guard (0..<ranks).contains(shard.rank) else {
                    throw PlanError("table \(table.name): shard on rank \(shard.rank), but the plan has ranks 0..<\(ranks)")
                }
                guard shard.columns.lowerBound == next else {
                    throw PlanError(shard.columns.lowerBound < next
                        ? "table \(table.name): columns from \(shard.columns.lowerBound) are covered twice"
                        : "table \(table.name): columns \(next)..<\(shard.columns.lowerBound) are not placed")
                }
                next = shard.columns.upperBound
            }
            guard next == table.dim else {
                throw PlanError(next > table.dim ? "table \(table.name): shards reach column \(next), but dim is \(table.dim)"
                                                 : "table \(table.name): columns \(next)..<\(table.dim) are not placed")
            }
        }
        if let missing = tables.first(where: { !placed.contains($0.name) }) {
            throw PlanError("plan does not place table \(missing.name)")
        }
        if let memoryPerRank {
            for (rank, bytes) in memoryByRank(tables: tables, optimizer: optimizer).enumerated() where bytes > memoryPerRank {
                let biggest = placements.flatMap { p in p.shards.filter { $0.rank == rank }.map { (p.table, $0) } }
                    .max { byName[$0.0]!.bytes(columns: $0.1.columns.count, optimizer: optimizer)
                         < byName[$1.0]!.bytes(columns: $1.1.columns.count, optimizer: optimizer) }
                throw PlanError("rank \(rank) holds \(ByteCount(bytes)), over its \(ByteCount(memoryPerRank)) by "
                                + "\(ByteCount(bytes - memoryPerRank)) (largest shard: table \(biggest?.0 ?? "?"))")
            }
        }
    }

    /// Reads a plan file; the format version is checked before anything else.
    public static func read(_ path: String) throws(PlanError) -> ShardingPlan {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) }
        catch { throw PlanError("\(path): cannot read (\(error.localizedDescription))") }
        struct Version: Decodable { let formatVersion: Int }
        do {
            let version = try JSONDecoder().decode(Version.self, from: data).formatVersion
            guard version == currentFormatVersion else {
                throw PlanError("\(path): plan format version \(version); this build reads version \(currentFormatVersion)")
            }
            return try JSONDecoder().decode(ShardingPlan.self, from: data)
        } catch let error as PlanError {
            throw error.description.hasPrefix(path) ? error : PlanError("\(path): \(error)")
        } catch {
            throw PlanError("\(path): \(JSONProblem.describe(error))")
        }
    }

    public func write(to path: String) throws(PlanError) {
        do { try JSONFile.write(self, to: path) } catch { throw PlanError(error.description) }
    }
}

/// Bytes for people: 1.5 GiB, 320.0 MiB, 12.0 KiB, 100 B. Parses the same forms (and KB/MB/GB
/// as powers of 1000) for memory limits.
public struct ByteCount: CustomStringConvertible, Hashable, Sendable {
    public let bytes: Int
    public init(_ bytes: Int) { self.bytes = bytes }

    public var description: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    public init(parsing text: String) throws(PlanError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let suffixes: [(String, Double)] = [("TiB", 0x1p40), ("GiB", 0x1p30), ("MiB", 0x1p20), ("KiB", 0x1p10),
                                            ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
        for (suffix, scale) in suffixes where trimmed.hasSuffix(suffix) {
            if let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value > 0, value.isFinite {
                self.init(Int(value * scale)); return
            }
        }
        if let value = Int(trimmed), value > 0 { self.init(value); return }
        throw PlanError("memory '\(text)': expected a positive size such as 2GiB, 512MiB or 1000000")
    }
}
