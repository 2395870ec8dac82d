import Foundation

/// Reads a graph saved as NumPy arrays (`np.save`) in one directory: `features.npy` (float32
/// or float64, shape (nodes, features)), `labels.npy` (int32 or int64, one per node; negative:
/// unlabelled), `edges.npy` (int32 or int64, (E, 2) or PyG's `edge_index` layout (2, E); (2, 2)
/// is taken as (2, E)), and optionally `train.npy`, `valid.npy` (or `val.npy`) and `test.npy`,
/// each node indices (int32, int64) or a boolean mask over the nodes. Without them a split is drawn.
public enum NumPyReader {
    public static func read(directory: String, options: GraphReadOptions = GraphReadOptions()) throws(DatasetError) -> LoadedGraph {
        let featureArray = try NumPyArray(path: GraphText.path(directory, "features.npy"))
        guard featureArray.shape.count == 2, (1...Int(Int32.max)).contains(featureArray.shape[0]), featureArray.shape[1] > 0 else {
            throw DatasetError(path: featureArray.path, line: 0,
                               reason: "shape \(featureArray.shapeText); features must be 2-D, (nodes, features), with 1...\(Int32.max) nodes")
        }
        let nodeCount = featureArray.shape[0], featureCount = featureArray.shape[1]
        let features = try featureArray.floats()
        try features.withUnsafeBufferPointer { values throws(DatasetError) in
            for (i, value) in values.enumerated() where !value.isFinite {
                throw DatasetError(path: featureArray.path, line: 0, reason: "row \(i / featureCount), column \(i % featureCount) is \(value), not a finite number")
            }
        }

        let labelArray = try NumPyArray(path: GraphText.path(directory, "labels.npy"))
        guard labelArray.shape == [nodeCount] else {
            throw DatasetError(path: labelArray.path, line: 0, reason: "shape \(labelArray.shapeText); expected one label per node, (\(nodeCount),)")
        }
        let labels = try labelArray.integers().enumerated().map { (i, label) throws(DatasetError) -> Int32 in
            guard label < Int64(Int32.max) else { throw DatasetError(path: labelArray.path, line: 0, reason: "label \(i) is \(label), past \(Int32.max)") }
            return Int32(max(label, -1))
        }

        let edges = try readEdges(GraphText.path(directory, "edges.npy"), nodeCount: nodeCount, policy: options.onBadEdge)
        let roles = try readSplit(directory, labels: labels)
        return try LoadedGraph(source: directory, nodeCount: nodeCount, edges: edges, features: features, featureCount: featureCount,
                               labels: labels, roles: roles, labelsPath: labelArray.path, options: options)
    }

    /// Edge k of an (E, 2) array is row k; of a (2, E) array, column k.
    private static func readEdges(_ path: String, nodeCount: Int, policy: BadRowPolicy) throws(DatasetError) -> EdgeList {
        let array = try NumPyArray(path: path)
        guard array.shape.count == 2, array.shape[0] == 2 || array.shape[1] == 2 else {
            throw DatasetError(path: path, line: 0, reason: "shape \(array.shapeText); edges must be (E, 2) or (2, E)")
        }
        let pairsInRows = array.shape[0] != 2
        let count = pairsInRows ? array.shape[0] : array.shape[1]
        var edges = EdgeList(path: path, places: .edges, policy: policy, missing: "outside 0..<\(nodeCount)", capacity: count)
        try array.integers().withUnsafeBufferPointer { ids throws(DatasetError) in
            for k in 0..<count {
                let (a, b) = pairsInRows ? (ids[2 * k], ids[2 * k + 1]) : (ids[k], ids[count + k])
                try edges.append(a, b, nodeCount: nodeCount, at: k)
            }
        }
        return edges
    }

    /// The roles of `train.npy`, `valid.npy` (or `val.npy`) and `test.npy`: all three, or nil when none is there.
    private static func readSplit(_ directory: String, labels: [Int32]) throws(DatasetError) -> [NodeRole]? {
        let manager = FileManager.default
        let validation = ["valid.npy", "val.npy"].filter { manager.fileExists(atPath: GraphText.path(directory, $0)) }
        guard validation.count <= 1 else { throw DatasetError(path: directory, line: 0, reason: "holds both valid.npy and val.npy; keep one") }
        let files = [("train.npy", NodeRole.train), (validation.first ?? "valid.npy", .validation), ("test.npy", .test)]
        let present = files.filter { manager.fileExists(atPath: GraphText.path(directory, $0.0)) }
        guard !present.isEmpty else { return nil }
        guard present.count == files.count else {
            let missing = files.filter { file in !present.contains { $0.0 == file.0 } }.map(\.0)
            throw DatasetError(path: directory, line: 0, reason: "has \(present.map(\.0).joined(separator: " and ")) but no "
                               + "\(missing.joined(separator: " or ")); give train, valid (or val) and test, or none to have a split drawn")
        }
        var roles = [NodeRole](repeating: .unlabelled, count: labels.count)
        for (file, role) in files {
            let array = try NumPyArray(path: GraphText.path(directory, file))
            guard array.shape.count == 1 else {
                throw DatasetError(path: array.path, line: 0, reason: "shape \(array.shapeText); a split is 1-D, node indices or a mask over the nodes")
            }
            let nodes: [Int]
            if array.element == .bool {
                guard array.shape[0] == labels.count else {
                    throw DatasetError(path: array.path, line: 0, reason: "a mask of \(array.shape[0]) entries over \(labels.count) nodes")
                }
                let mask = try array.bools()
                nodes = mask.indices.filter { mask[$0] }
            } else {
                guard array.element == .int32 || array.element == .int64 else { throw array.wrongType("node indices (int32, int64) or a bool mask") }
                let indices = try array.integers()
                if let k = indices.firstIndex(where: { $0 < 0 || $0 >= Int64(labels.count) }) {
                    throw DatasetError(path: array.path, line: 0, reason: "entry \(k) is node \(indices[k]), outside 0..<\(labels.count)")
                }
                nodes = indices.map { Int($0) }
            }
            for node in nodes {
                if let reason = NodeRoles.assign(role, to: node, in: &roles, labels: labels) {
                    throw DatasetError(path: array.path, line: 0, reason: reason)
                }
            }
        }
        return roles
    }
}
