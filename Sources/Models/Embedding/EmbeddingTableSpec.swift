/// One embedding table of a model: `rows` vectors of `dim` floats.
public struct EmbeddingTableSpec: Codable, Hashable, Sendable {
    public var name: String
    public var rows: Int
    public var dim: Int

    public init(name: String, rows: Int, dim: Int) {
        self.name = name
        self.rows = rows
        self.dim = dim
    }
}

/// A block of a table one rank holds: the columns `columns` of the rows `rows` (every row when
/// nil). Table-wise shards hold the whole table, column-wise ones a column range of every row,
/// row-wise ones a row range of every column; a grid shard cuts both.
public struct EmbeddingShardSpec: Codable, Hashable, Sendable {
    public var table: Int
    public var columns: Range<Int>
    public var rows: Range<Int>?

    public init(table: Int, columns: Range<Int>, rows: Range<Int>? = nil) {
        self.table = table
        self.columns = columns
        self.rows = rows
    }

    /// The rows held, given the table's row count.
    public func rowRange(of table: EmbeddingTableSpec) -> Range<Int> { rows ?? 0..<table.rows }

    /// The lookups that feed this shard: its table's, restricted to its rows.
    public var input: EmbeddingInput { EmbeddingInput(table: table, rows: rows) }
}

/// What one feature of a batch carries: the lookups of `table` into `rows` (all rows when nil),
/// as indices relative to the range's first row.
public struct EmbeddingInput: Hashable, Comparable, Sendable {
    public var table: Int
    public var rows: Range<Int>?

    public init(table: Int, rows: Range<Int>? = nil) {
        self.table = table
        self.rows = rows
    }

    public static func < (a: EmbeddingInput, b: EmbeddingInput) -> Bool {
        (a.table, a.rows?.lowerBound ?? 0) < (b.table, b.rows?.lowerBound ?? 0)
    }
}

/// How embedding rows are updated from their sparse gradient.
public enum EmbeddingOptimizer: String, Codable, CaseIterable, Sendable {
    /// row -= lr · g.
    case sgd
    /// FBGEMM's row-wise Adagrad: one accumulator per row (per shard for column-wise shards, as
    /// TorchRec keeps it), state += mean(g²), row -= lr · g / (sqrt(state) + ε).
    case adagrad
}
