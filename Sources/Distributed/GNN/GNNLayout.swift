import Models

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
                partitioner: GraphPartitioner, seed: UInt64) throws(GNNConfigError) {
        guard stages >= 1, partitions >= 1, chunks >= 1 else { throw GNNConfigError("stages, partitions and chunks must be at least 1") }
        guard stages <= config.layers else {
            throw GNNConfigError("\(stages) pipeline stages for \(config.layers) layers: each stage needs at least one layer")
        }
        guard partitions * chunks <= graph.nodeCount else {
            throw GNNConfigError("\(partitions) partitions x \(chunks) chunks is more than the \(graph.nodeCount) nodes")
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
                order += chunkNodes.map { nodes[Int($0)] }
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

/// Which rows partitions exchange at one chunk step: for every chunk and peer, the rows a
/// partition sends (its chunk rows that the peer's nodes read) and receives.
struct HaloPlan {
    /// send[c][q]: rows of my chunk c adjacent to partition q's nodes.
    let send: [[[Int32]]]
    /// receive[c][q]: rows of q's chunk c adjacent to my nodes.
    let receive: [[[Int32]]]
    /// gradientSend[c][q]: q's rows adjacent to my chunk c (where my backward scatters).
    let gradientSend: [[[Int32]]]
    /// gradientReceive[c][q]: my rows adjacent to q's chunk c (where q's backward scatters).
    let gradientReceive: [[[Int32]]]

    init(layout: GNNLayout, graph: Graph, partition me: Int) {
        let P = layout.partitions, K = layout.chunks
        var owner = [Int32](repeating: 0, count: graph.nodeCount)
        for (p, range) in layout.partitionRanges.enumerated() { for i in range { owner[i] = Int32(p) } }
        let a = graph.adjacency
        // For each partition p and chunk c: the set of (row, peer) pairs where row in p's chunk c
        // is adjacent to peer's nodes; built for p = me and for every p's rows adjacent to me.
        func rowsOf(_ p: Int, chunk c: Int, adjacentTo q: Int) -> [Int32] {
            var rows: [Int32] = []
            for i in layout.chunkRanges[p][c] {
                for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] where Int(owner[Int(a.columns[k])]) == q {
                    rows.append(Int32(i))
                    break
                }
            }
            return rows
        }
        func neighbours(of p: Int, chunk c: Int, in q: Int) -> [Int32] {
            var seen = Set<Int32>()
            for i in layout.chunkRanges[p][c] {
                for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] where Int(owner[Int(a.columns[k])]) == q { seen.insert(a.columns[k]) }
            }
            return seen.sorted()
        }
        var send = [[[Int32]]](), receive = [[[Int32]]](), gradientSend = [[[Int32]]](), gradientReceive = [[[Int32]]]()
        for c in 0..<K {
            send.append((0..<P).map { q in q == me ? [] : rowsOf(me, chunk: c, adjacentTo: q) })
            receive.append((0..<P).map { q in q == me ? [] : rowsOf(q, chunk: c, adjacentTo: me) })
            gradientSend.append((0..<P).map { q in q == me ? [] : neighbours(of: me, chunk: c, in: q) })
            gradientReceive.append((0..<P).map { q in q == me ? [] : neighbours(of: q, chunk: c, in: me) })
        }
        self.send = send
        self.receive = receive
        self.gradientSend = gradientSend
        self.gradientReceive = gradientReceive
    }

    /// Rows this partition reads from other partitions, over all chunks: its halo.
    var haloSize: Int { receive.joined().reduce(0) { $0 + $1.count } }
}
