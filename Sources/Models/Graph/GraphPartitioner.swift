import METISShim

/// Cuts a graph's nodes into parts with few edges between them: the vertex partitions of graph
/// parallelism and the chunks of the layer pipeline.
public enum GraphPartitioner: String, Sendable, CaseIterable, Codable {
    /// METIS k-way (multilevel, minimises the edge cut), seeded.
    case metis
    /// Consecutive node ids: no locality unless the ids have some.
    case contiguous

    /// The part of each node, each part non-empty when `parts <= nodeCount`.
    public func partition(_ graph: Graph, parts: Int, seed: UInt64) -> [Int32] {
        let n = graph.nodeCount
        guard parts > 1 else { return [Int32](repeating: 0, count: n) }
        switch self {
        case .contiguous:
            return (0..<n).map { Int32($0 * parts / n) }
        case .metis:
            return partition(graph, nodes: (0..<Int32(n)).map { $0 }, parts: parts, seed: seed)
        }
    }

    /// The part of each node of `nodes` (all nodes when nil), cutting the subgraph they induce.
    public func partition(_ graph: Graph, nodes: [Int32], parts: Int, seed: UInt64) -> [Int32] {
        guard parts > 1 else { return [Int32](repeating: 0, count: nodes.count) }
        switch self {
        case .contiguous:
            return (0..<nodes.count).map { Int32($0 * parts / nodes.count) }
        case .metis:
            return Self.metisParts(graph.adjacency, parts: parts, seed: seed, nodes: nodes)
                ?? GraphPartitioner.contiguous.partition(graph, nodes: nodes, parts: parts, seed: seed)
        }
    }

    private static func metisParts(_ a: CSRMatrix, parts: Int, seed: UInt64, nodes: [Int32]? = nil) -> [Int32]? {
        // METIS wants the graph without self loops, numbered 0..<count.
        let members = nodes ?? (0..<a.rowCount).map { Int32($0) }
        var local = [Int32](repeating: -1, count: a.rowCount)
        for (i, node) in members.enumerated() { local[Int(node)] = Int32(i) }
        var xadj: [idx_t] = [0]
        var adjncy: [idx_t] = []
        adjncy.reserveCapacity(a.nonzeroCount)
        for node in members {
            let i = Int(node)
            for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] where Int(a.columns[k]) != i && local[Int(a.columns[k])] >= 0 {
                adjncy.append(local[Int(a.columns[k])])
            }
            xadj.append(idx_t(adjncy.count))
        }
        guard members.count >= parts else { return nil }
        var nvtxs = idx_t(members.count), ncon: idx_t = 1, nparts = idx_t(parts), objval: idx_t = 0
        var options = [idx_t](repeating: 0, count: Int(METIS_NOPTIONS))
        METIS_SetDefaultOptions(&options)
        options[Int(METIS_OPTION_SEED.rawValue)] = idx_t(truncatingIfNeeded: seed & 0x7fff_ffff)
        var part = [idx_t](repeating: 0, count: members.count)
        let status = METIS_PartGraphKway(&nvtxs, &ncon, &xadj, &adjncy, nil, nil, nil, &nparts, nil, nil,
                                         &options, &objval, &part)
        guard status == Int32(METIS_OK.rawValue) else { return nil }
        // METIS may leave a part empty on tiny or disconnected graphs; callers need every part.
        var used = [Bool](repeating: false, count: parts)
        for p in part { used[Int(p)] = true }
        return used.allSatisfy { $0 } ? part : nil
    }

    /// Nodes of each part, in increasing order.
    public static func members(of parts: [Int32], count: Int) -> [[Int32]] {
        var members = [[Int32]](repeating: [], count: count)
        for (node, part) in parts.enumerated() { members[Int(part)].append(Int32(node)) }
        return members
    }
}
