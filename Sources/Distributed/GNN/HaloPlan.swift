import Models

/// Which rows partitions exchange at one chunk step: for every chunk and peer, the rows a
/// partition sends (its chunk rows that the peer's nodes read) and receives, as rows of its
/// `PartitionGraph`.
struct HaloPlan {
    /// send[c][q]: rows of my chunk c adjacent to partition q's nodes.
    let send: [[[Int32]]]
    /// receive[c][q]: rows of q's chunk c adjacent to my nodes.
    let receive: [[[Int32]]]
    /// gradientSend[c][q]: q's rows adjacent to my chunk c (where my backward scatters).
    let gradientSend: [[[Int32]]]
    /// gradientReceive[c][q]: my rows adjacent to q's chunk c (where q's backward scatters).
    let gradientReceive: [[[Int32]]]

    /// The plan of partition `me` of `layout` over `graph` (the whole graph in the layout's order),
    /// its rows numbered as in `part`.
    init(layout: GNNLayout, graph: Graph, partition me: Int, part: PartitionGraph) {
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
            return rows.map(part.local)
        }
        func neighbours(of p: Int, chunk c: Int, in q: Int) -> [Int32] {
            var seen = Set<Int32>()
            for i in layout.chunkRanges[p][c] {
                for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] where Int(owner[Int(a.columns[k])]) == q { seen.insert(a.columns[k]) }
            }
            return seen.sorted().map(part.local)
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
