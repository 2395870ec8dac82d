import Models

/// One placement problem: tables, ranks and the memory each rank has for embeddings, with the
/// global batch the costs are for. Task files (`mpitrain tables tasks`) hold lists of them.
public struct PlanningTask: Codable, Hashable, Sendable {
    public var tables: [TableSpec]
    public var ranks: Int
    public var memoryPerRank: Int
    public var batchSize: Int
    public var optimizer: EmbeddingOptimizer
    /// Tables of at most this many bytes (optimizer state included) are replicated on every
    /// rank by the heuristics, as TorchRec users place small tables data-parallel; nil: none.
    public var dataParallelBytes: Int?

    public init(tables: [TableSpec], ranks: Int, memoryPerRank: Int, batchSize: Int, optimizer: EmbeddingOptimizer = .sgd,
                dataParallelBytes: Int? = nil) {
        self.tables = tables
        self.ranks = ranks
        self.memoryPerRank = memoryPerRank
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.dataParallelBytes = dataParallelBytes
    }

    /// Bytes of table `i` whole, optimizer state included.
    public func bytes(ofTable i: Int) -> Int {
        tables[i].bytes(columns: tables[i].dim, optimizer: optimizer)
    }
}

/// A placement algorithm. Planners report failure (a `PlanError` naming the table that does
/// not fit and by how much) rather than overfilling a rank.
public protocol Planner {
    /// The name users pass to `--algo`.
    var name: String { get }
    func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan
}
