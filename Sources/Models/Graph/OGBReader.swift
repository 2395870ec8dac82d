import Foundation

/// Reads a node-property-prediction data set in the layout of OGB's `NodePropPredDataset`
/// directory: `raw/edge.csv` (`src,dst` per line, 0-based node ids), `raw/node-feat.csv` (one
/// row of comma-separated numbers per node), `raw/node-label.csv` (one integer per node; empty,
/// NaN or negative: unlabelled), optionally `raw/num-node-list.csv` (the node count, checked
/// against the feature rows), and `split/<name>/{train,valid,test}.csv` (one node id per line).
/// Any file may be gzip-compressed (`.csv.gz`), as OGB ships them. Edges are undirected
/// whatever `master.csv` says, since `Graph` symmetrises them. Without `split/`, a split is drawn.
public enum OGBReader {
    public static func read(directory: String, options: GraphReadOptions = GraphReadOptions()) throws(DatasetError) -> LoadedGraph {
        let raw = GraphText.path(directory, "raw")
        let countPath = GraphText.existing(GraphText.path(raw, "num-node-list.csv"))
        var declared: Int?
        if let countPath { declared = try nodeCount(countPath) }
        let featurePath = try required(GraphText.path(raw, "node-feat.csv"))
        let (features, featureCount, rows) = try readFeatures(featurePath, expectedRows: declared)
        if let countPath, let declared, declared != rows {
            throw DatasetError(path: featurePath, line: 0, reason: "\(rows) feature rows, but \(countPath) says the graph has \(declared) nodes")
        }
        let labelPath = try required(GraphText.path(raw, "node-label.csv"))
        let labels = try readLabels(labelPath, nodeCount: rows)
        let edgePath = try required(GraphText.path(raw, "edge.csv"))
        let edges = try readEdges(edgePath, nodeCount: rows, policy: options.onBadEdge)
        let roles = try readSplit(directory, labels: labels, choice: options.split)
        return try LoadedGraph(source: directory, nodeCount: rows, edges: edges, features: features, featureCount: featureCount,
                               labels: labels, roles: roles, labelsPath: labelPath, options: options)
    }

    /// `path` or `path.gz`, which must exist.
    private static func required(_ path: String) throws(DatasetError) -> String {
        guard let found = GraphText.existing(path) else { throw DatasetError(path: path, line: 0, reason: "missing (nor is there a .gz)") }
        return found
    }

    /// The one count of `num-node-list.csv`.
    private static func nodeCount(_ path: String) throws(DatasetError) -> Int {
        let lines = try GraphText.lines(path)
        var count: Int?
        while let line = try lines.next() {
            guard !line.isEmpty else { continue }
            guard count == nil else { throw DatasetError(path: path, line: lines.line, reason: "a second graph; a node-property data set has one") }
            guard let n = GraphText.index(line), n > 0, n <= Int64(Int32.max) else {
                throw DatasetError(path: path, line: lines.line, reason: "\(GraphText.quoted(line)) is not a node count in 1...\(Int32.max)")
            }
            count = Int(n)
        }
        guard let count else { throw DatasetError(path: path, line: 0, reason: "empty; expected the node count") }
        return count
    }

    /// The feature rows, all of one width and every value finite, row after row.
    private static func readFeatures(_ path: String, expectedRows: Int?) throws(DatasetError) -> (values: [Float], width: Int, rows: Int) {
        let lines = try GraphText.lines(path)
        var values: [Float] = []
        var width = -1, rows = 0
        var text = ScratchBuffer<CChar>(), row = ScratchBuffer<Float>()
        while let line = try lines.next() {
            guard !line.isEmpty else { throw DatasetError(path: path, line: lines.line, reason: "an empty row; every node needs its features") }
            let c = text.nulTerminated(line)
            var p = c
            var count = 0
            while true {
                var end: UnsafeMutablePointer<CChar>?
                let value = strtof(p, &end)
                guard let end, end != p, value.isFinite else {
                    throw DatasetError(path: path, line: lines.line,
                                       reason: "value \(count + 1) is '\(field(at: p))', not a finite number")
                }
                row.store(value, at: count)
                count += 1
                p = end
                if p.pointee == 0 { break }
                guard p.pointee == 0x2c else {
                    throw DatasetError(path: path, line: lines.line, reason: "expected a comma after value \(count), found '\(field(at: p))'")
                }
                p += 1
            }
            if width < 0 {
                width = count
                values.reserveCapacity(min((expectedRows ?? 1024) * width, 1 << 26))
            }
            guard count == width else {
                throw DatasetError(path: path, line: lines.line, reason: "\(count) values, earlier rows have \(width)")
            }
            values.append(contentsOf: UnsafeBufferPointer(start: row.base, count: count))
            rows += 1
            guard rows <= Int(Int32.max) else { throw DatasetError(path: path, line: lines.line, reason: "more than \(Int32.max) nodes") }
        }
        guard rows > 0 else { throw DatasetError(path: path, line: 0, reason: "no feature rows") }
        return (values, width, rows)
    }

    /// The text of the comma-separated field that starts at `p`.
    private static func field(at p: UnsafeMutablePointer<CChar>) -> String {
        var end = p
        while end.pointee != 0 && end.pointee != 0x2c { end += 1 }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: min(end - p, 40)), as: UTF8.self)
    }

    /// One label per node: its class, or -1 when the line is empty, NaN or negative.
    private static func readLabels(_ path: String, nodeCount: Int) throws(DatasetError) -> [Int32] {
        let lines = try GraphText.lines(path)
        var labels: [Int32] = []
        labels.reserveCapacity(nodeCount)
        var text = ScratchBuffer<CChar>()
        while let line = try lines.next() {
            guard !line.isEmpty else {
                labels.append(-1)
                continue
            }
            let c = text.nulTerminated(line)
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(c, &end)
            guard let end, end != c, end.pointee == 0 else {
                let reason = line.contains(0x2c)
                    ? "several values; only single-label classification is read (not multi-label sets such as ogbn-proteins)"
                    : "\(GraphText.quoted(line)) is not a class number"
                throw DatasetError(path: path, line: lines.line, reason: reason)
            }
            if value.isNaN || value < 0 {
                labels.append(-1)
                continue
            }
            guard value == value.rounded(), value < Double(Int32.max) else {
                throw DatasetError(path: path, line: lines.line, reason: "\(GraphText.quoted(line)) is not a class number")
            }
            labels.append(Int32(value))
        }
        guard labels.count == nodeCount else {
            throw DatasetError(path: path, line: 0, reason: "\(labels.count) labels for \(nodeCount) nodes (one line per node, empty or NaN when unlabelled)")
        }
        return labels
    }

    /// `src,dst` per line; an edge naming a node past the feature rows goes by `policy`.
    private static func readEdges(_ path: String, nodeCount: Int, policy: BadRowPolicy) throws(DatasetError) -> EdgeList {
        let lines = try GraphText.lines(path)
        var edges = EdgeList(path: path, places: .lines, policy: policy, missing: "outside 0..<\(nodeCount)")
        while let line = try lines.next() {
            guard !line.isEmpty else { continue }
            guard let comma = line.firstIndex(of: 0x2c),
                  let a = GraphText.index(UnsafeBufferPointer(rebasing: line[..<comma])),
                  let b = GraphText.index(UnsafeBufferPointer(rebasing: line[(comma + 1)...])) else {
                throw DatasetError(path: path, line: lines.line, reason: "expected two node ids 'src,dst', found \(GraphText.quoted(line))")
            }
            try edges.append(a, b, nodeCount: nodeCount, at: lines.line)
        }
        return edges
    }

    /// The roles `split/<name>/{train,valid,test}.csv` give, or nil when there is no `split/`.
    /// `choice` picks the split when there are several, and must name one.
    private static func readSplit(_ directory: String, labels: [Int32], choice: String?) throws(DatasetError) -> [NodeRole]? {
        let root = GraphText.path(directory, "split")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            if let choice { throw DatasetError(path: root, line: 0, reason: "missing, so there is no split '\(choice)' to use") }
            return nil
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: GraphText.path(root, name), isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
        let name: String
        switch (choice, names.count) {
        case (let choice?, _):
            guard names.contains(choice) else {
                throw DatasetError(path: root, line: 0, reason: "no split '\(choice)'; the splits are \(names.isEmpty ? "none" : names.joined(separator: ", "))")
            }
            name = choice
        case (nil, 0): throw DatasetError(path: root, line: 0, reason: "holds no split directory (split/<name>/train.csv ...)")
        case (nil, 1): name = names[0]
        default: throw DatasetError(path: root, line: 0, reason: "holds several splits (\(names.joined(separator: ", "))); choose one with --split")
        }
        var roles = [NodeRole](repeating: .unlabelled, count: labels.count)
        for (file, role) in [("train", NodeRole.train), ("valid", .validation), ("test", .test)] {
            let path = try required(GraphText.path(root, name, "\(file).csv"))
            let lines = try GraphText.lines(path)
            while let line = try lines.next() {
                guard !line.isEmpty else { continue }
                guard let node = GraphText.index(line), node < Int64(labels.count) else {
                    throw DatasetError(path: path, line: lines.line, reason: "\(GraphText.quoted(line)) is not a node id in 0..<\(labels.count)")
                }
                if let reason = NodeRoles.assign(role, to: Int(node), in: &roles, labels: labels) {
                    throw DatasetError(path: path, line: lines.line, reason: reason)
                }
            }
        }
        return roles
    }
}
