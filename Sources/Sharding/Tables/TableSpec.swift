import Foundation
import Models

/// An embedding table as the planners see it and the trainer draws it: its shape, how many rows
/// a sample looks up on average, how bag sizes spread around that, and how often rows repeat
/// (`bins`, given or computed from `distribution`).
///
/// JSON: `{"name": "t0", "rows": 100000, "dim": 32, "pooling": 15.2, "distribution": "zipf:1.1",
/// "bins": [...], "bagSizes": "random"}` with `distribution` (`uniform` or `zipf:S`), `bins` (17
/// fractions), or both; `bagSizes` is `fixed` (the default) or `random`.
public struct TableSpec: Hashable, Sendable, Codable {
    public var name: String
    public var rows: Int
    public var dim: Int
    /// Mean lookups per sample.
    public var poolingFactor: Double
    /// The generator the indices follow, when known; without it, indices are drawn to match `bins`.
    public var distribution: IndexDistribution?
    public var bins: ReuseBins
    /// How bag sizes spread around the pooling factor.
    public var bagSizes: TableTraffic.BagSizes = .fixed

    public init(name: String, rows: Int, dim: Int, poolingFactor: Double, distribution: IndexDistribution) throws(PlanError) {
        try Self.check(name: name, rows: rows, dim: dim, poolingFactor: poolingFactor)
        self.name = name
        self.rows = rows
        self.dim = dim
        self.poolingFactor = poolingFactor
        self.distribution = distribution
        bins = ReuseBins.expected(rows: rows, poolingFactor: poolingFactor, distribution: distribution)
    }

    public init(name: String, rows: Int, dim: Int, poolingFactor: Double, bins: ReuseBins) throws(PlanError) {
        try Self.check(name: name, rows: rows, dim: dim, poolingFactor: poolingFactor)
        self.name = name
        self.rows = rows
        self.dim = dim
        self.poolingFactor = poolingFactor
        self.bins = bins
    }

    /// The table's shape for the model.
    public var embedding: EmbeddingTableSpec { EmbeddingTableSpec(name: name, rows: rows, dim: dim) }

    /// How the table is looked up: rows from its generator when the spec has one, otherwise
    /// from row groups fitted to its reuse bins.
    public var traffic: TableTraffic {
        let source: TableTraffic.Rows
        if let distribution {
            source = .distribution(distribution)
        } else {
            let groups = bins.rowGroups(rows: rows, poolingFactor: poolingFactor)
            source = .groups(rows: groups.rows, weights: groups.meanUses)
        }
        return TableTraffic(rows: rows, poolingFactor: poolingFactor, bagSizes: bagSizes, source: source)
    }

    /// Bytes of `columns` columns of this table plus the optimizer's state for them.
    public func bytes(columns: Int, optimizer: EmbeddingOptimizer) -> Int {
        bytes(rows: rows, columns: columns, optimizer: optimizer)
    }

    /// Bytes of a `rows` × `columns` block of this table plus the optimizer's state for it.
    public func bytes(rows: Int, columns: Int, optimizer: EmbeddingOptimizer) -> Int {
        rows * columns * MemoryLayout<Float>.size + (optimizer == .adagrad ? rows * MemoryLayout<Float>.size : 0)
    }

    /// The share of lookups that reach `rows` (all rows when nil). The samplers scatter hot
    /// rows over the table by a random permutation, so a row range gets its share of the rows
    /// on average.
    public func share(of rows: Range<Int>?) -> Double {
        rows.map { Double($0.count) / Double(self.rows) } ?? 1
    }

    /// The block a shard holds, as a table of its own for the cost models: its rows and
    /// columns, the lookups that reach its rows, and the table's reuse bins (a row's uses do
    /// not depend on which range holds it).
    public func block(_ shard: EmbeddingShardSpec) -> TableSpec {
        var block = self
        block.rows = shard.rowRange(of: embedding).count
        block.dim = shard.columns.count
        block.poolingFactor = poolingFactor * share(of: shard.rows)
        return block
    }

    /// Bytes of one shard of this table plus the optimizer's state for it.
    public func bytes(of shard: EmbeddingShardSpec, optimizer: EmbeddingOptimizer) -> Int {
        bytes(rows: shard.rowRange(of: embedding).count, columns: shard.columns.count, optimizer: optimizer)
    }

    /// Bounds far above any real table (a trillion rows, 64 KiB-wide rows, a million lookups
    /// per bag) that keep every size, byte count and cost a planner sums from overflowing.
    public static let maxRows = 1 << 40, maxDim = 1 << 16, maxPooling = 1e6

    private static func check(name: String, rows: Int, dim: Int, poolingFactor: Double) throws(PlanError) {
        guard !name.isEmpty else { throw PlanError("a table has an empty name") }
        guard rows > 0, rows <= maxRows else { throw PlanError("table \(name): rows must be in 1...\(maxRows) (2^40), found \(rows)") }
        guard dim > 0, dim <= maxDim else { throw PlanError("table \(name): dim must be in 1...\(maxDim), found \(dim)") }
        guard poolingFactor >= 0, poolingFactor <= maxPooling else {
            throw PlanError("table \(name): pooling must be in 0...\(Int(maxPooling)), found \(poolingFactor)")
        }
    }

    private enum CodingKeys: String, CodingKey { case name, rows, dim, pooling, distribution, bins, bagSizes }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .name)
        let rows = try c.decode(Int.self, forKey: .rows), dim = try c.decode(Int.self, forKey: .dim)
        let pooling = try c.decode(Double.self, forKey: .pooling)
        let text = try c.decodeIfPresent(String.self, forKey: .distribution)
        let distribution: IndexDistribution?
        do { distribution = try text.map { text throws(ConfigError) in try IndexDistribution(parsing: text) } }
        catch { throw PlanError("table \(name): \(error)") }
        let bins: ReuseBins?
        do { bins = try c.decodeIfPresent(ReuseBins.self, forKey: .bins) }
        catch let error as PlanError { throw PlanError("table \(name): \(error)") }
        if let bins {
            self = try Self(name: name, rows: rows, dim: dim, poolingFactor: pooling, bins: bins)
            self.distribution = distribution
        } else if let distribution {
            self = try Self(name: name, rows: rows, dim: dim, poolingFactor: pooling, distribution: distribution)
        } else {
            throw PlanError("table \(name): needs \"bins\" or \"distribution\"")
        }
        if let text = try c.decodeIfPresent(String.self, forKey: .bagSizes) {
            guard let bagSizes = TableTraffic.BagSizes(rawValue: text) else {
                throw PlanError("table \(name): bagSizes '\(text)': expected fixed or random")
            }
            self.bagSizes = bagSizes
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(rows, forKey: .rows)
        try c.encode(dim, forKey: .dim)
        try c.encode(poolingFactor, forKey: .pooling)
        try c.encodeIfPresent(distribution?.description, forKey: .distribution)
        try c.encode(bins, forKey: .bins)
        if bagSizes != .fixed { try c.encode(bagSizes.rawValue, forKey: .bagSizes) }
    }
}

/// Reading and writing lists of table specs (a JSON array, or `{"tables": [...]}`).
public enum TableSpecFile {
    public static func read(_ path: String) throws(PlanError) -> [TableSpec] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) }
        catch { throw PlanError("\(path): cannot read (\(error.localizedDescription))") }
        struct Wrapped: Decodable { let tables: [TableSpec] }
        let tables: [TableSpec]
        do {
            if data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "[") {
                tables = try JSONDecoder().decode([TableSpec].self, from: data)
            } else {
                tables = try JSONDecoder().decode(Wrapped.self, from: data).tables
            }
        } catch let error as PlanError {
            throw PlanError("\(path): \(error)")
        } catch {
            throw PlanError("\(path): \(JSONProblem.describe(error))")
        }
        guard !tables.isEmpty else { throw PlanError("\(path): no tables") }
        var seen = Set<String>()
        for table in tables where !seen.insert(table.name).inserted {
            throw PlanError("\(path): table name \(table.name) appears twice")
        }
        return tables
    }

    public static func write(_ tables: [TableSpec], to path: String) throws(PlanError) {
        do { try JSONFile.write(tables, to: path) } catch { throw PlanError(error.description) }
    }
}
