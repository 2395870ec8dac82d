/// How ranks share a GNN: `stages` pipeline stages of consecutive layers, each over
/// `partitions` vertex partitions, with `chunks` chunks per partition flowing through the
/// pipeline. Pipeline mode is (R, 1, K), graph parallelism (1, R, 1), the hybrid (S, R/S, K).
public struct GNNLayout: Sendable, Hashable {
    public let stages: Int
    public let partitions: Int
    public let chunks: Int
    /// Layers of each stage.
    public let stageLayers: [Range<Int>]
    /// Node i of the renumbered graph is `order[i]` of the original graph.
    public let order: [Int32]
    /// Renumbered node range of each partition, and of each chunk of each partition.
    public let partitionRanges: [Range<Int>]
    public let chunkRanges: [[Range<Int>]]
    /// Chunk of every renumbered node.
    public let chunkOf: [Int32]

    public var ranks: Int { stages * partitions }
    public func stage(ofRank rank: Int) -> Int { rank / partitions }
    public func partition(ofRank rank: Int) -> Int { rank % partitions }
    public func rank(stage: Int, partition: Int) -> Int { stage * partitions + partition }

    /// Cuts `graph` for `stages` x `partitions` ranks with `chunks` chunks per partition:
    /// partitions by `partitioner` over the whole graph, chunks by the same within each
    /// partition (locality-preserving), layers balanced by estimated cost.
    public init(config: GNNConfig, graph: Graph, stages: Int, partitions: Int, chunks: Int,
                partitioner: GraphPartitioner, seed: UInt64) throws(ConfigError) {
        guard stages >= 1, partitions >= 1, chunks >= 1 else { throw ConfigError("stages, partitions and chunks must be at least 1") }
        guard stages <= config.layers else {
            throw ConfigError("\(stages) pipeline stages for \(config.layers) layers: each stage needs at least one layer")
        }
        guard partitions * chunks <= graph.nodeCount else {
            throw ConfigError("\(partitions) partitions x \(chunks) chunks is more than the \(graph.nodeCount) nodes")
        }
        self.stages = stages
        self.partitions = partitions
        self.chunks = chunks
        let costs = (0..<config.layers).map { config.cost(of: $0, nodes: graph.nodeCount, nonzeros: graph.adjacency.nonzeroCount) }
        stageLayers = Self.balance(costs, into: stages)

        let parts = partitioner.partition(graph, parts: partitions, seed: seed)
        let members = GraphPartitioner.members(of: parts, count: partitions)
        var order: [Int32] = []
        var partitionRanges: [Range<Int>] = [], chunkRanges: [[Range<Int>]] = []
        var chunkOf = [Int32](repeating: 0, count: graph.nodeCount)
        for nodes in members {
            let start = order.count
            let chunkParts = partitioner.partition(graph, nodes: nodes, parts: chunks, seed: seed &+ 1)
            var ranges: [Range<Int>] = []
            for (c, chunkNodes) in GraphPartitioner.members(of: chunkParts, count: chunks).enumerated() {
                let chunkStart = order.count
                order += Self.localityOrder(chunkNodes.map { nodes[Int($0)] }, graph: graph, partitioner: partitioner, seed: seed)
                for i in chunkStart..<order.count { chunkOf[i] = Int32(c) }
                ranges.append(chunkStart..<order.count)
            }
            partitionRanges.append(start..<order.count)
            chunkRanges.append(ranges)
        }
        self.order = order
        self.partitionRanges = partitionRanges
        self.chunkRanges = chunkRanges
        self.chunkOf = chunkOf
    }

    /// Of the edges between distinct nodes of `graph` (in this layout's order), the share whose
    /// far end is in a later chunk: the neighbours that a pipelined epoch in the fixed chunk
    /// order reads from last epoch, at every layer that aggregates.
    public func historicalNeighbourShare(of graph: Graph) -> Double {
        let adjacency = graph.adjacency
        var historical = 0, edges = 0
        chunkOf.withUnsafeBufferPointer { chunkOf in
            adjacency.columns.withUnsafeBufferPointer { columns in
                for row in 0..<adjacency.rowCount {
                    for k in adjacency.rowOffsets[row]..<adjacency.rowOffsets[row + 1] where Int(columns[k]) != row {
                        edges += 1
                        if chunkOf[Int(columns[k])] > chunkOf[row] { historical += 1 }
                    }
                }
            }
        }
        return Double(historical) / Double(max(edges, 1))
    }

    /// `nodes` reordered so that neighbours sit close in memory: the partitioner's small parts
    /// (about 512 nodes, whose rows stay in cache together) one after another.
    static func localityOrder(_ nodes: [Int32], graph: Graph, partitioner: GraphPartitioner, seed: UInt64) -> [Int32] {
        let parts = nodes.count / 512
        guard parts > 1, partitioner == .metis else { return nodes }
        let blocks = partitioner.partition(graph, nodes: nodes, parts: parts, seed: seed &+ 2)
        return GraphPartitioner.members(of: blocks, count: parts).flatMap { $0.map { nodes[Int($0)] } }
    }

    /// Consecutive groups of `costs` whose largest sum is as small as possible (each non-empty).
    static func balance(_ costs: [Double], into groups: Int) -> [Range<Int>] {
        let n = costs.count
        var prefix = [0.0]
        for c in costs { prefix.append(prefix.last! + c) }
        // best[g][i]: smallest possible largest group over the first i layers in g groups.
        var best = [[Double]](repeating: [Double](repeating: .infinity, count: n + 1), count: groups + 1)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: groups + 1)
        best[0][0] = 0
        for g in 1...groups {
            for i in g...n {
                for j in (g - 1)..<i {
                    let candidate = max(best[g - 1][j], prefix[i] - prefix[j])
                    if candidate < best[g][i] {
                        best[g][i] = candidate
                        cut[g][i] = j
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for g in stride(from: groups, to: 0, by: -1) {
            let start = cut[g][end]
            ranges.append(start..<end)
            end = start
        }
        return ranges.reversed()
    }
}
