import Models

extension NeuroShardCostModel {
    /// The largest set `collect` draws by default: a rank of an 8-rank shard-large plan (100-200
    /// tables) holds 12-25 pieces.
    public static let defaultMaxTables = 25

    /// Measures `count` random shard sets of 1 to `maxTables` tables from `tables` with `oracle`, eight at a
    /// time in interleaved rounds (as the oracle measures a plan's ranks); each table's width is
    /// halved a random number of times (down to 4 columns), as NeuroShard augments its data for
    /// column-wise shards, and a quarter of the tables of 64 rows or more give one of their
    /// halves, quarters or eighths by rows, as row-wise shards hold. `progress` sees the number
    /// of sets measured so far.
    public static func collect(from tables: [TableSpec], count: Int, maxTables: Int = defaultMaxTables, oracle: CostOracle, seed: UInt64,
                               progress: (Int) -> Void = { _ in }) -> Dataset {
        var random = SplitMix64(seed: seed, stream: "cost-collection")
        var records: [Record] = []
        while records.count < count {
            var group: [TableSpec] = []
            var sets: [(tables: [TableSpec], columns: [Int], rows: [Range<Int>?], shards: [EmbeddingShardSpec])] = []
            for _ in 0..<min(8, count - records.count) {
                let size = 1 + random.nextInt(below: min(maxTables, tables.count))
                let chosen = Array(tables.indices.shuffled(using: &random).prefix(size)).map { tables[$0] }
                let columns = chosen.map { table in
                    var width = table.dim
                    while width > 4 && random.nextDouble() < 0.4 { width /= 2 }
                    return width
                }
                let rows = chosen.map { table -> Range<Int>? in
                    guard table.rows >= 64, random.nextDouble() < 0.25 else { return nil }
                    let parts = 2 << random.nextInt(below: 3), part = random.nextInt(below: parts)
                    return table.rows * part / parts ..< table.rows * (part + 1) / parts
                }
                let shards = chosen.indices.map { EmbeddingShardSpec(table: group.count + $0, columns: 0..<columns[$0], rows: rows[$0]) }
                group += chosen.enumerated().map { k, table in
                    var copy = table
                    copy.name = "\(sets.count).\(k).\(table.name)"  // a set may repeat a table another set has
                    return copy
                }
                sets.append((chosen, columns, rows, shards))
            }
            let measured = oracle.compute(byRank: sets.map(\.shards), tables: group)
            for (set, times) in zip(sets, measured) {
                records.append(Record(tables: set.tables, columns: set.columns, rows: set.rows, forward: times.forward, backward: times.backward))
            }
            progress(records.count)
        }
        return Dataset(batchSize: oracle.batchSize, referenceMilliseconds: oracle.referenceMilliseconds, records: records)
    }
}

extension NeuroShardCostModel {
    /// What the search's own plans cost: each task planned by NeuroShard on this model, each
    /// plan measured by `oracle`, each rank's shard set kept as a record. Training on these
    /// teaches the model where its search went wrong (the sets the search favours are the ones
    /// its errors make look cheap). Returns the records and each plan's predicted and measured
    /// step cost; a task the search cannot place is skipped.
    public func measureOwnPlans(_ tasks: [PlanningTask], communication: CommunicationCostModel,
                                oracle: CostOracle) throws(PlanError) -> (records: [Record], predicted: [Double], measured: [Double]) {
        var records: [Record] = [], predicted: [Double] = [], measured: [Double] = []
        let planner = NeuroShardPlanner(model: self, communication: communication)
        let prediction = NeuroShardPrediction(model: self, communication: communication, batchSize: oracle.batchSize)
        for task in tasks {
            guard let plan = try? planner.plan(task) else { continue }
            predicted.append(try prediction.cost(of: plan, tables: task.tables).total)
            let cost = try oracle.cost(of: plan, tables: task.tables)
            measured.append(cost.total)
            for (shards, rank) in zip(plan.shardsByRank(tables: task.tables), cost.ranks) where !shards.isEmpty {
                records.append(Record(tables: shards.map { task.tables[$0.table] }, columns: shards.map(\.columns.count), rows: shards.map(\.rows),
                                      forward: rank.forward, backward: rank.backward))
            }
        }
        return (records, predicted, measured)
    }
}
