import Foundation

/// Reads a graph in the LINQS text layout: `<name>.content` (`id<TAB>features...<TAB>label`),
/// `<name>.cites` (`id<TAB>id` per undirected edge) and optionally `<name>.split`
/// (`id<TAB>train|val|test`). Without a split file, one is drawn (see `DrawnSplit`). A cited
/// node missing from `.content` goes by `options.onBadEdge`.
public enum LINQSReader {
    public static func read(directory: String, name: String? = nil,
                            options: GraphReadOptions = GraphReadOptions()) throws(DatasetError) -> LoadedGraph {
        let base = URL(fileURLWithPath: directory)
        let stem = name ?? base.lastPathComponent
        let contentPath = base.appendingPathComponent("\(stem).content").path
        let citesPath = base.appendingPathComponent("\(stem).cites").path
        let splitPath = base.appendingPathComponent("\(stem).split").path

        let content = try lines(of: contentPath)
        var index: [Substring: Int32] = [:]
        var featureCount = -1
        var features: [Float] = []
        var labelNames: [Substring] = []
        for (number, line) in content {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 3 else {
                throw DatasetError(path: contentPath, line: number, reason: "expected id, features and label, found \(fields.count) fields")
            }
            if featureCount < 0 {
                featureCount = fields.count - 2
                features.reserveCapacity(featureCount * content.count)
            }
            guard fields.count - 2 == featureCount else {
                throw DatasetError(path: contentPath, line: number,
                                   reason: "feature row has \(fields.count - 2) values, earlier rows have \(featureCount)")
            }
            guard index[fields[0]] == nil else {
                throw DatasetError(path: contentPath, line: number, reason: "duplicate node id '\(fields[0])'")
            }
            index[fields[0]] = Int32(index.count)
            for (column, field) in fields[1...featureCount].enumerated() {
                guard let value = Float(field), value.isFinite else {
                    throw DatasetError(path: contentPath, line: number, reason: "feature \(column + 1) is '\(field)', not a number")
                }
                features.append(value)
            }
            labelNames.append(fields[fields.count - 1])
        }
        guard !index.isEmpty else { throw DatasetError(path: contentPath, line: 0, reason: "no nodes") }
        let classes = Array(Set(labelNames)).sorted()
        let classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Int32($0)) })
        let labels = labelNames.map { classIndex[$0]! }

        var edges = EdgeList(path: citesPath, places: .lines, policy: options.onBadEdge, missing: "not in \(stem).content")
        for (number, line) in try lines(of: citesPath) {
            let fields = line.split(separator: "\t")
            guard fields.count == 2 else {
                throw DatasetError(path: citesPath, line: number, reason: "expected two node ids, found \(fields.count) fields")
            }
            guard let a = index[fields[0]], let b = index[fields[1]] else {
                try edges.reject(at: number, reason: "unknown node '\(index[fields[0]] == nil ? fields[0] : fields[1])'")
                continue
            }
            edges.append(a, b)
        }

        var roles: [NodeRole]?
        if FileManager.default.fileExists(atPath: splitPath) {
            var given = [NodeRole](repeating: .unlabelled, count: index.count)
            for (number, line) in try lines(of: splitPath) {
                let fields = line.split(separator: "\t")
                guard fields.count == 2 else {
                    throw DatasetError(path: splitPath, line: number, reason: "expected node id and role, found \(fields.count) fields")
                }
                guard let node = index[fields[0]] else {
                    throw DatasetError(path: splitPath, line: number, reason: "unknown node '\(fields[0])'")
                }
                switch fields[1] {
                case "train": given[Int(node)] = .train
                case "val", "validation": given[Int(node)] = .validation
                case "test": given[Int(node)] = .test
                default: throw DatasetError(path: splitPath, line: number, reason: "role '\(fields[1])' is not train, val or test")
                }
            }
            roles = given
        }
        return try LoadedGraph(source: directory, nodeCount: index.count, edges: edges, features: features, featureCount: featureCount,
                               labels: labels, roles: roles, labelsPath: contentPath, options: options)
    }

    /// Non-empty lines with their 1-based numbers.
    private static func lines(of path: String) throws(DatasetError) -> [(Int, Substring)] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw DatasetError(path: path, line: 0, reason: "cannot read the file")
        }
        var result: [(Int, Substring)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            if !trimmed.isEmpty { result.append((i + 1, trimmed)) }
        }
        return result
    }
}
