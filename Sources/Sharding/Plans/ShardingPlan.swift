import Foundation
import Models

/// Where every embedding table goes, in TorchRec's sharding types: whole on one rank
/// (table-wise), cut into column ranges (column-wise), row ranges (row-wise) or blocks of both
/// (grid) on several ranks, or replicated on every rank (data-parallel). Tables are named, so a
/// plan can be checked against the specs it is used with. JSON with a format version; version 1
/// plans (table-wise and column-wise only) still load.
public struct ShardingPlan: Codable, Hashable, Sendable {
    public static let currentFormatVersion = 2
    /// Versions this build reads.
    public static let readableVersions = 1...currentFormatVersion

    /// One block of a table (a column range of a row range, every row when `rows` is nil) and
    /// the rank that holds it.
    public struct Shard: Codable, Hashable, Sendable {
        public var columns: Range<Int>
        public var rows: Range<Int>?
        public var rank: Int

        public init(columns: Range<Int>, rows: Range<Int>? = nil, rank: Int) {
            self.columns = columns
            self.rows = rows
            self.rank = rank
        }

        private enum CodingKeys: String, CodingKey { case columns, rows, rank }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func range(_ key: CodingKeys) throws -> Range<Int>? {
                guard let bounds = try c.decodeIfPresent([Int].self, forKey: key) else { return nil }
                guard bounds.count == 2, bounds[0] >= 0, bounds[0] < bounds[1] else {
                    throw PlanError("\(key.stringValue) \(bounds): expected [first, end) with 0 <= first < end")
                }
                return bounds[0]..<bounds[1]
            }
            guard let columns = try range(.columns) else { throw PlanError("a shard has no columns") }
            self.init(columns: columns, rows: try range(.rows), rank: try c.decode(Int.self, forKey: .rank))
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode([columns.lowerBound, columns.upperBound], forKey: .columns)
            if let rows { try c.encode([rows.lowerBound, rows.upperBound], forKey: .rows) }
            try c.encode(rank, forKey: .rank)
        }
    }

    /// How a table is split, in TorchRec's names.
    public enum ShardingType: String, Codable, CaseIterable, Sendable {
        case tableWise = "table_wise"
        case columnWise = "column_wise"
        case rowWise = "row_wise"
        case grid = "grid_shard"
        case dataParallel = "data_parallel"
    }

    /// One table's shards, or its replication on every rank.
    public struct Placement: Codable, Hashable, Sendable {
        public var table: String
        /// The blocks, in column then row order; empty for a data-parallel table.
        public var shards: [Shard]
        /// Replicated on every rank: looked up locally, its gradient summed over ranks.
        public var dataParallel: Bool

        public init(table: String, shards: [Shard]) {
            self.table = table
            self.shards = shards
            dataParallel = false
        }

        /// A table replicated on every rank.
        public static func replicated(_ table: String) -> Placement {
            var placement = Placement(table: table, shards: [])
            placement.dataParallel = true
            return placement
        }

        /// Whole on one rank.
        public var isTableWise: Bool { !dataParallel && shards.count == 1 && shards[0].rows == nil }

        /// The sharding type the shards make: cuts in columns only, rows only, or both.
        public var type: ShardingType {
            if dataParallel { return .dataParallel }
            if isTableWise { return .tableWise }
            if shards.allSatisfy({ $0.rows == nil }) { return .columnWise }
            if shards.allSatisfy({ $0.rows != nil && $0.columns == shards[0].columns }) { return .rowWise }
            return .grid
        }

        private enum CodingKeys: String, CodingKey { case table, type, shards }
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            table = try c.decode(String.self, forKey: .table)
            shards = try c.decodeIfPresent([Shard].self, forKey: .shards) ?? []
            let declared = try c.decodeIfPresent(String.self, forKey: .type)
            guard let declared else { dataParallel = false; return }
            guard let type = ShardingType(rawValue: declared) else {
                throw PlanError("table \(table): sharding type '\(declared)' is not one of "
                                + ShardingType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            dataParallel = type == .dataParallel
            guard !dataParallel || shards.isEmpty else { throw PlanError("table \(table): a data_parallel table lists no shards") }
            guard self.type == type else {
                throw PlanError("table \(table): declared \(type.rawValue), but its shards make it \(self.type.rawValue)")
            }
        }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(table, forKey: .table)
            try c.encode(type.rawValue, forKey: .type)
            if !dataParallel { try c.encode(shards, forKey: .shards) }
        }
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
    /// table, column and row order); data-parallel tables are not among them. Call on a
    /// validated plan.
    public func shardsByRank(tables: [TableSpec]) -> [[EmbeddingShardSpec]] {
        let index = Dictionary(uniqueKeysWithValues: tables.enumerated().map { ($1.name, $0) })
        var byRank = [[EmbeddingShardSpec]](repeating: [], count: ranks)
        for placement in placements {
            guard let table = index[placement.table] else { continue }
            for shard in placement.shards {
                let rows = shard.rows == 0..<tables[table].rows ? nil : shard.rows
                byRank[shard.rank].append(EmbeddingShardSpec(table: table, columns: shard.columns, rows: rows))
            }
        }
        return byRank.map { $0.sorted { ($0.table, $0.columns.lowerBound, $0.rows?.lowerBound ?? 0) < ($1.table, $1.columns.lowerBound, $1.rows?.lowerBound ?? 0) } }
    }

    /// The tables every rank holds (data-parallel), as indices into `tables`, ascending.
    public func replicatedTables(tables: [TableSpec]) -> [Int] {
        let replicated = Set(placements.filter(\.dataParallel).map(\.table))
        return tables.indices.filter { replicated.contains(tables[$0].name) }
    }

    /// How many tables each sharding type holds.
    public var tablesByType: [(type: ShardingType, tables: Int)] {
        ShardingType.allCases.compactMap { type in
            let count = placements.filter { $0.type == type }.count
            return count > 0 ? (type, count) : nil
        }
    }

    /// One line for logs: the tables per sharding type, then the tables (and blocks) of each rank.
    public func summary(tables: [TableSpec]) -> String {
        let names: [ShardingType: String] = [.tableWise: "whole", .columnWise: "split by columns", .rowWise: "split by rows",
                                             .grid: "split by rows and columns", .dataParallel: "data-parallel"]
        let counts = tablesByType.map { "\($0.tables) \($0.tables == 1 ? "table" : "tables") \(names[$0.type]!)" }
        let replicated = replicatedTables(tables: tables).map { tables[$0].name }
        let ranksText = shardsByRank(tables: tables).enumerated().map { rank, shards in
            let held = shards.map { shard in
                let table = tables[shard.table]
                var text = table.name
                if shard.columns.count != table.dim { text += "[\(shard.columns.lowerBound)..<\(shard.columns.upperBound)]" }
                if let rows = shard.rows { text += "{rows \(rows.lowerBound)..<\(rows.upperBound)}" }
                return text
            } + replicated.map { $0 + "(dp)" }
            return "rank \(rank): " + (held.isEmpty ? "none" : held.joined(separator: " "))
        }
        return counts.joined(separator: ", ") + "; " + ranksText.joined(separator: "; ")
    }

    /// Bytes each rank holds: its blocks and every data-parallel table, with optimizer state.
    public func memoryByRank(tables: [TableSpec], optimizer: EmbeddingOptimizer) -> [Int] {
        let replicated = replicatedTables(tables: tables).reduce(0) { $0 + tables[$1].bytes(columns: tables[$1].dim, optimizer: optimizer) }
        var bytes = [Int](repeating: replicated, count: ranks)
        for (rank, shards) in shardsByRank(tables: tables).enumerated() {
            for shard in shards { bytes[rank] += tables[shard.table].bytes(of: shard, optimizer: optimizer) }
        }
        return bytes
    }

    /// Checks the plan against `tables`: the format version, every table placed once, every
    /// row and column of a sharded table held exactly once, ranks in 0..<ranks, and each rank's
    /// bytes (data-parallel tables on every rank) within `memoryPerRank` (when given). The
    /// error names the table or rank at fault.
    public func validate(tables: [TableSpec], ranks expectedRanks: Int? = nil, memoryPerRank: Int? = nil,
                         optimizer: EmbeddingOptimizer = .sgd) throws(PlanError) {
        guard Self.readableVersions.contains(formatVersion) else {
            throw PlanError("plan format version \(formatVersion); this build reads versions \(Self.readableVersions.lowerBound)-\(Self.currentFormatVersion)")
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
            if formatVersion == 1, placement.dataParallel || placement.shards.contains(where: { $0.rows != nil }) {
                throw PlanError("table \(table.name): \(placement.type.rawValue) sharding needs plan format version 2; the plan says version 1")
            }
            if placement.dataParallel { continue }
            guard !placement.shards.isEmpty else { throw PlanError("table \(table.name): no shards") }
            for shard in placement.shards {
                guard (0..<ranks).contains(shard.rank) else {
                    throw PlanError("table \(table.name): shard on rank \(shard.rank), but the plan has ranks 0..<\(ranks)")
                }
                guard shard.columns.upperBound <= table.dim else {
                    throw PlanError("table \(table.name): shards reach column \(shard.columns.upperBound), but dim is \(table.dim)")
                }
                if let rows = shard.rows, rows.upperBound > table.rows {
                    throw PlanError("table \(table.name): shard on rank \(shard.rank) reaches row \(rows.upperBound), but the table has \(table.rows) rows")
                }
            }
            try Self.checkCoverage(placement.shards, of: table)
        }
        if let missing = tables.first(where: { !placed.contains($0.name) }) {
            throw PlanError("plan does not place table \(missing.name)")
        }
        if let memoryPerRank {
            let replicated = replicatedTables(tables: tables).map { tables[$0] }
            if let table = replicated.first(where: { $0.bytes(columns: $0.dim, optimizer: optimizer) > memoryPerRank }) {
                let bytes = table.bytes(columns: table.dim, optimizer: optimizer)
                throw PlanError("table \(table.name) is data-parallel, but its \(ByteCount(bytes)) exceed a rank's "
                                + "\(ByteCount(memoryPerRank)) by \(ByteCount(bytes - memoryPerRank))")
            }
            let byRank = shardsByRank(tables: tables)
            for (rank, bytes) in memoryByRank(tables: tables, optimizer: optimizer).enumerated() where bytes > memoryPerRank {
                let biggest = byRank[rank].max { tables[$0.table].bytes(of: $0, optimizer: optimizer) < tables[$1.table].bytes(of: $1, optimizer: optimizer) }
                throw PlanError("rank \(rank) holds \(ByteCount(bytes)), over its \(ByteCount(memoryPerRank)) by "
                                + "\(ByteCount(bytes - memoryPerRank)) (largest shard: table \(biggest.map { tables[$0.table].name } ?? replicated.first?.name ?? "?"))")
            }
        }
    }

    /// Checks that `shards` hold every row and column of `table` exactly once: a sweep over
    /// columns when only columns are cut, over rows when only rows are, and otherwise no two
    /// blocks overlapping and their areas adding up to the table's.
    private static func checkCoverage(_ shards: [Shard], of table: TableSpec) throws(PlanError) {
        func sweep(_ ranges: [Range<Int>], end: Int, _ what: String) throws(PlanError) {
            var next = 0
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                guard range.lowerBound == next else {
                    throw PlanError(range.lowerBound < next ? "table \(table.name): \(what) from \(range.lowerBound) are covered twice"
                                                            : "table \(table.name): \(what) \(next)..<\(range.lowerBound) are not placed")
                }
                next = range.upperBound
            }
            guard next == end else { throw PlanError("table \(table.name): \(what) \(next)..<\(end) are not placed") }
        }
        let allRows = 0..<table.rows
        if shards.allSatisfy({ ($0.rows ?? allRows) == allRows }) {
            try sweep(shards.map(\.columns), end: table.dim, "columns")
        } else if shards.allSatisfy({ $0.columns == 0..<table.dim }) {
            try sweep(shards.map { $0.rows ?? allRows }, end: table.rows, "rows")
        } else {
            for (i, a) in shards.enumerated() {
                for b in shards[(i + 1)...] where a.columns.overlaps(b.columns) && (a.rows ?? allRows).overlaps(b.rows ?? allRows) {
                    let rows = (a.rows ?? allRows).clamped(to: b.rows ?? allRows), columns = a.columns.clamped(to: b.columns)
                    throw PlanError("table \(table.name): shards on ranks \(a.rank) and \(b.rank) both hold rows "
                                    + "\(rows.lowerBound)..<\(rows.upperBound), columns \(columns.lowerBound)..<\(columns.upperBound)")
                }
            }
            let area = shards.reduce(0) { $0 + ($1.rows ?? allRows).count * $1.columns.count }
            guard area == table.rows * table.dim else {
                throw PlanError("table \(table.name): its shards hold \(area) of its \(table.rows * table.dim) values; some rows or columns are not placed")
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
            guard readableVersions.contains(version) else {
                throw PlanError("\(path): plan format version \(version); this build reads versions \(readableVersions.lowerBound)-\(currentFormatVersion)")
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
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes), unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    public init(parsing text: String) throws(PlanError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let suffixes: [(String, Double)] = [("TiB", 0x1p40), ("GiB", 0x1p30), ("MiB", 0x1p20), ("KiB", 0x1p10),
                                            ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
        for (suffix, scale) in suffixes where trimmed.hasSuffix(suffix) {
            if let value = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value > 0, value * scale <= 0x1p50 {
                self.init(max(1, Int(value * scale))); return
            }
        }
        if let value = Int(trimmed), value > 0, value <= 1 << 50 { self.init(value); return }
        throw PlanError("memory '\(text)': expected a positive size up to 1 PiB, such as 2GiB, 512MiB or 1000000")
    }
}
