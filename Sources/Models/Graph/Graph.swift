/// What a node is used for in training.
public enum NodeRole: UInt8, Sendable, Hashable, Codable {
    case unlabelled, train, validation, test
}

/// A node-classification graph: normalised adjacency with self loops, row-normalised features,
/// labels and a split.
public struct Graph: Sendable {
    public let nodeCount: Int
    /// Undirected edges without self loops, each counted once.
    public let edgeCount: Int
    /// D^-1/2 (A + I) D^-1/2, symmetric.
    public let adjacency: CSRMatrix
    /// (nodeCount, featureCount), each row scaled to unit L1 norm.
    public let features: [Float]
    public let featureCount: Int
    public let labels: [Int32]
    public let classCount: Int
    public let roles: [NodeRole]

    /// Builds the normalised graph from raw edges and features (rows of `features` are scaled here).
    public init(
        nodeCount: Int, edges: [(Int32, Int32)], features: [Float], featureCount: Int,
        labels: [Int32], classCount: Int, roles: [NodeRole]
    ) {
        precondition(features.count == nodeCount * featureCount && labels.count == nodeCount && roles.count == nodeCount,
                     "graph arrays disagree on the node count")
        self.nodeCount = nodeCount
        self.adjacency = CSRMatrix.normalizedAdjacency(nodeCount: nodeCount, edges: edges)
        self.edgeCount = (adjacency.nonzeroCount - nodeCount) / 2
        var scaled = features
        scaled.withUnsafeMutableBufferPointer { x in
            for i in 0..<nodeCount {
                let row = x.baseAddress! + i * featureCount
                var norm: Float = 0
                for c in 0..<featureCount { norm += abs(row[c]) }
                if norm > 0 { for c in 0..<featureCount { row[c] /= norm } }
            }
        }
        self.features = scaled
        self.featureCount = featureCount
        self.labels = labels
        self.classCount = classCount
        self.roles = roles
    }

    /// Nodes with `role`, in increasing order.
    public func nodes(_ role: NodeRole) -> [Int32] {
        roles.indices.filter { roles[$0] == role }.map { Int32($0) }
    }

    /// Average number of neighbours per node, self loop excluded.
    public var averageDegree: Double { Double(2 * edgeCount) / Double(max(nodeCount, 1)) }
}

extension Graph {
    init(nodeCount: Int, edgeCount: Int, adjacency: CSRMatrix, features: [Float], featureCount: Int,
         labels: [Int32], classCount: Int, roles: [NodeRole]) {
        self.nodeCount = nodeCount
        self.edgeCount = edgeCount
        self.adjacency = adjacency
        self.features = features
        self.featureCount = featureCount
        self.labels = labels
        self.classCount = classCount
        self.roles = roles
    }

    /// The same graph with node `order[i]` renumbered as node i, so that partitions and chunks
    /// become contiguous ranges.
    public func permuted(by order: [Int32]) -> Graph {
        precondition(order.count == nodeCount, "an order must name every node once")
        var newIndex = [Int32](repeating: 0, count: nodeCount)
        for (i, old) in order.enumerated() { newIndex[Int(old)] = Int32(i) }
        var offsets = [Int](repeating: 0, count: nodeCount + 1)
        var columns = [Int32](), values = [Float]()
        columns.reserveCapacity(adjacency.nonzeroCount)
        values.reserveCapacity(adjacency.nonzeroCount)
        var features = [Float](repeating: 0, count: self.features.count)
        for (i, old) in order.enumerated() {
            let o = Int(old)
            var row: [(Int32, Float)] = []
            for k in adjacency.rowOffsets[o]..<adjacency.rowOffsets[o + 1] {
                row.append((newIndex[Int(adjacency.columns[k])], adjacency.values[k]))
            }
            row.sort { $0.0 < $1.0 }
            for (c, v) in row {
                columns.append(c)
                values.append(v)
            }
            offsets[i + 1] = columns.count
            for c in 0..<featureCount { features[i * featureCount + c] = self.features[o * featureCount + c] }
        }
        return Graph(nodeCount: nodeCount, edgeCount: edgeCount,
                     adjacency: CSRMatrix(rowCount: nodeCount, columnCount: nodeCount, rowOffsets: offsets, columns: columns, values: values),
                     features: features, featureCount: featureCount, labels: order.map { labels[Int($0)] },
                     classCount: classCount, roles: order.map { roles[Int($0)] })
    }
}
