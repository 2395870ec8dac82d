import Models

/// TorchRec-style estimate of a plan's cost from arithmetic, not measurement: a shard's forward
/// reads batch x pooling rows of its width at `bandwidth`, its backward reads and writes them
/// (twice the forward), and communication comes from the calibrated all-to-all model.
public struct AnalyticCostModel: PlanCostModel {
    public var batchSize: Int
    public var communication: CommunicationCostModel
    /// Bytes per second of embedding-row traffic; the default is near what `bench dlrm`
    /// measures for the embedding kernels on a 2-vCPU server.
    public var bandwidth: Double

    public init(batchSize: Int, communication: CommunicationCostModel, bandwidth: Double = 8e9) {
        self.batchSize = batchSize
        self.communication = communication
        self.bandwidth = bandwidth
    }

    /// Forward milliseconds of `columns` columns of `table`.
    public func forward(_ table: TableSpec, columns: Int) -> Double {
        Double(batchSize) * table.poolingFactor * Double(columns * MemoryLayout<Float>.size) / bandwidth * 1000
    }

    public func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)] {
        byRank.map { shards in
            let forward = shards.reduce(0) { $0 + self.forward(tables[$1.table].block($1), columns: $1.columns.count) }
            return (forward, 2 * forward)
        }
    }
}

/// TorchRec's greedy perf partitioner on the analytic cost: tables in descending estimated
/// cost (compute and their share of communication), each to the rank with the lowest summed
/// estimate that has room.
public struct TorchRecPerfPlanner: Planner {
    public let name = "torchrec-perf"
    public var communication: CommunicationCostModel

    public init(communication: CommunicationCostModel) { self.communication = communication }

    public func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan {
        let model = AnalyticCostModel(batchSize: task.batchSize, communication: communication)
        let perf = task.tables.map { table in
            let pooled = Double(task.batchSize * table.dim * MemoryLayout<Float>.size)
            return 3 * model.forward(table, columns: table.dim) + 2 * communication.milliseconds(bytes: pooled, ranks: task.ranks)
        }
        var loads = RankLoads(task)
        for table in loads.toPlace(task.tables.indices.sorted(by: { (perf[$0], $1) > (perf[$1], $0) })) {
            try loads.place(table, on: loads.leastLoaded(for: table), load: perf[table])
        }
        return loads.plan(algorithm: name)
    }
}
