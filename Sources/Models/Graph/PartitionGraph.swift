/// The part of a graph one vertex partition computes on, so that a rank's buffers hold its own
/// nodes and their halo instead of every node: the partition's nodes (a contiguous range of the
/// graph's numbering) as rows `0..<ownCount`, then the nodes they read from other partitions,
/// in increasing order. Own rows keep their adjacency rows, columns renumbered and values as in
/// the whole graph (its normalisation is global); halo rows have none, since their values
/// arrive by exchange. Its edge count is of the edges its own nodes have.
public struct PartitionGraph: Sendable {
    public let graph: Graph
    public let ownCount: Int
    /// The whole graph's number of each local node.
    public let globalIDs: [Int32]
    private let own: Range<Int>

    /// The part of `whole` that the nodes `own` compute on.
    public init(_ whole: Graph, owning own: Range<Int>) {
        precondition(own.lowerBound >= 0 && own.upperBound <= whole.nodeCount, "a partition's nodes lie in the graph")
        self.own = own
        ownCount = own.count
        if own == 0..<whole.nodeCount {
            // One partition: the whole graph, shared rather than copied.
            graph = whole
            globalIDs = own.map { Int32($0) }
            return
        }
        let a = whole.adjacency
        var halo = Set<Int32>()
        for i in own {
            for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] where !own.contains(Int(a.columns[k])) { halo.insert(a.columns[k]) }
        }
        let globalIDs = own.map { Int32($0) } + halo.sorted()
        self.globalIDs = globalIDs
        let n = globalIDs.count
        var offsets = [Int](repeating: 0, count: n + 1)
        var columns: [Int32] = [], values: [Float] = []
        columns.reserveCapacity(a.rowOffsets[own.upperBound] - a.rowOffsets[own.lowerBound])
        values.reserveCapacity(columns.capacity)
        var edges = 0
        for (row, i) in own.enumerated() {
            for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] {
                let column = Int(a.columns[k])
                if own.contains(column) {
                    columns.append(Int32(column - own.lowerBound))
                    if column > i { edges += 1 }
                } else {
                    columns.append(Self.haloRow(of: a.columns[k], in: globalIDs, after: own.count)!)
                    edges += 1
                }
                values.append(a.values[k])
            }
            offsets[row + 1] = columns.count
        }
        for row in own.count..<n { offsets[row + 1] = columns.count }
        var features = [Float](repeating: 0, count: n * whole.featureCount)
        let width = whole.featureCount
        for (row, node) in globalIDs.enumerated() {
            for c in 0..<width { features[row * width + c] = whole.features[Int(node) * width + c] }
        }
        graph = Graph(nodeCount: n, edgeCount: edges,
                      adjacency: CSRMatrix(rowCount: n, columnCount: n, rowOffsets: offsets, columns: columns, values: values),
                      features: features, featureCount: width, labels: globalIDs.map { whole.labels[Int($0)] },
                      classCount: whole.classCount, roles: globalIDs.map { whole.roles[Int($0)] })
    }

    /// The local row of the whole graph's node `node`, which must be an own or halo node.
    public func local(_ node: Int32) -> Int32 {
        if own.contains(Int(node)) { return node - Int32(own.lowerBound) }
        guard let row = Self.haloRow(of: node, in: globalIDs, after: ownCount) else {
            preconditionFailure("node \(node) is neither in the partition nor in its halo")
        }
        return row
    }

    /// The row of `node` among the sorted halo that follows the first `ownCount` of `ids`.
    private static func haloRow(of node: Int32, in ids: [Int32], after ownCount: Int) -> Int32? {
        var low = ownCount, high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < node { low = middle + 1 } else { high = middle }
        }
        return low < ids.count && ids[low] == node ? Int32(low) : nil
    }
}
