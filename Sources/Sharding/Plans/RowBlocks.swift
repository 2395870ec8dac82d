import Models

/// A task whose tables too large for one rank are cut by rows into blocks, each a table of its
/// own (`TableSpec.block`), so a planner that places whole tables and column pieces can place
/// them; `merge` turns its plan back into a plan of the original tables, the blocks becoming
/// row-wise (or grid) shards.
struct RowBlocks {
    /// Runs `search` on the task with the tables larger than a rank cut into blocks of at most
    /// three quarters of a rank; when that finds no room, with every table over half a rank cut
    /// into half-rank blocks, then quarter-rank ones. The first plan found, merged back.
    /// `search` is given the task of blocks and, per table of it, whether it is a row block.
    static func plan(_ task: PlanningTask, _ search: (PlanningTask, _ rowCut: [Bool]) throws(PlanError) -> ShardingPlan) throws(PlanError) -> ShardingPlan {
        var failure: PlanError?
        for (over, block) in [(1.0, 0.75), (0.5, 0.5), (0.25, 0.25)] {
            let blocks = RowBlocks(task, over: over, block: block)
            if failure != nil && !blocks.cutsRows { break }
            do { return blocks.merge(try search(blocks.blockTask, blocks.origin.map { $0.rows != nil })) } catch { failure = failure ?? error }
        }
        throw failure!
    }

    let task: PlanningTask
    /// The task the planner sees.
    let blockTask: PlanningTask
    /// Per table of `blockTask`: the original table and the rows it holds (nil: every row).
    let origin: [(table: Int, rows: Range<Int>?)]

    /// Cuts every table of more than `over` × a rank's memory into blocks of at most `block` × it.
    init(_ task: PlanningTask, over: Double, block: Double) {
        self.task = task
        var tables: [TableSpec] = [], origin: [(table: Int, rows: Range<Int>?)] = []
        for (t, table) in task.tables.enumerated() {
            let bytes = task.bytes(ofTable: t), limit = max(1, Int(Double(task.memoryPerRank) * block))
            guard Double(bytes) > Double(task.memoryPerRank) * over, table.rows > 1 else {
                tables.append(table)
                origin.append((t, nil))
                continue
            }
            let count = min(table.rows, (bytes + limit - 1) / limit)
            let bounds = (0...count).map { table.rows * $0 / count }
            for rows in zip(bounds, bounds.dropFirst()).map({ $0..<$1 }) {
                var block = table.block(EmbeddingShardSpec(table: t, columns: 0..<table.dim, rows: rows))
                block.name = "\(table.name){rows \(rows.lowerBound)..<\(rows.upperBound)}"
                tables.append(block)
                origin.append((t, rows))
            }
        }
        var blockTask = task
        blockTask.tables = tables
        self.blockTask = blockTask
        self.origin = origin
    }

    /// Whether any table was cut.
    var cutsRows: Bool { origin.contains { $0.rows != nil } }

    /// The plan of the original tables that `plan` (of `blockTask`) makes.
    func merge(_ plan: ShardingPlan) -> ShardingPlan {
        guard cutsRows else { return plan }
        let index = Dictionary(uniqueKeysWithValues: blockTask.tables.enumerated().map { ($1.name, $0) })
        var shards = [[ShardingPlan.Shard]](repeating: [], count: task.tables.count)
        var replicated = Set<Int>()
        for placement in plan.placements {
            guard let b = index[placement.table] else { continue }
            let (t, blockRows) = origin[b]
            if placement.dataParallel { replicated.insert(t); continue }
            for shard in placement.shards {
                let offset = blockRows?.lowerBound ?? 0
                let rows = shard.rows.map { ($0.lowerBound + offset)..<($0.upperBound + offset) } ?? blockRows
                shards[t].append(.init(columns: shard.columns, rows: rows, rank: shard.rank))
            }
        }
        return ShardingPlan(ranks: plan.ranks, algorithm: plan.algorithm, placements: task.tables.enumerated().map { t, table in
            replicated.contains(t) ? .replicated(table.name) : .init(table: table.name, shards: shards[t])
        })
    }
}
