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

/// The part of a table one rank holds: every row, the columns `columns` (all of them for a
/// table-wise shard, a range for a column-wise one).
public struct EmbeddingShardSpec: Codable, Hashable, Sendable {
    public var table: Int
    public var columns: Range<Int>

    public init(table: Int, columns: Range<Int>) {
        self.table = table
        self.columns = columns
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
