import Models

extension NeuroShardCostModel {
    /// Measures `count` random shard sets of 1-15 tables from `tables` with `oracle`; each
    /// table's width is halved a random number of times (down to 4 columns), as NeuroShard
    /// augments its data for column-wise shards. `progress` sees each record as it is made.
    public static func collect(from tables: [TableSpec], count: Int, oracle: CostOracle, seed: UInt64,
                               progress: (Int, Record) -> Void = { _, _ in }) -> Dataset {
        var random = SplitMix64(seed: seed, stream: "cost-collection")
        var records: [Record] = []
        for i in 0..<count {
            let size = 1 + random.nextInt(below: min(15, tables.count))
            let chosen = Array(tables.indices.shuffled(using: &random).prefix(size)).map { tables[$0] }
            let columns = chosen.map { table in
                var width = table.dim
                while width > 4 && random.nextDouble() < 0.4 { width /= 2 }
                return width
            }
            let shards = columns.enumerated().map { EmbeddingShardSpec(table: $0.offset, columns: 0..<$0.element) }
            let measured = oracle.measure(shards, tables: chosen)
            let record = Record(tables: chosen, columns: columns, forward: measured.forward, backward: measured.backward)
            records.append(record)
            progress(i, record)
        }
        return Dataset(batchSize: oracle.batchSize, records: records)
    }
}
