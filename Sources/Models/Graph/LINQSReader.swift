import Foundation

/// Reads a graph in the LINQS text layout: `<name>.content` (`id<TAB>features...<TAB>label`),
/// `<name>.cites` (`id<TAB>id` per undirected edge) and optionally `<name>.split`
/// (`id<TAB>train|val|test`). Without a split file, a Planetoid-style split is drawn from `seed`:
/// 20 training nodes per class, 500 validation and 1,000 test nodes.
public enum LINQSReader {
    public static func read(directory: String, name: String? = nil, seed: UInt64 = 0) throws(DatasetError) -> Graph {
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

        var edges: [(Int32, Int32)] = []
        for (number, line) in try lines(of: citesPath) {
            let fields = line.split(separator: "\t")
            guard fields.count == 2 else {
                throw DatasetError(path: citesPath, line: number, reason: "expected two node ids, found \(fields.count) fields")
            }
            guard let a = index[fields[0]] else { throw DatasetError(path: citesPath, line: number, reason: "unknown node '\(fields[0])'") }
            guard let b = index[fields[1]] else { throw DatasetError(path: citesPath, line: number, reason: "unknown node '\(fields[1])'") }
            edges.append((a, b))
        }

        var roles = [NodeRole](repeating: .unlabelled, count: index.count)
        if FileManager.default.fileExists(atPath: splitPath) {
            for (number, line) in try lines(of: splitPath) {
                let fields = line.split(separator: "\t")
                guard fields.count == 2 else {
                    throw DatasetError(path: splitPath, line: number, reason: "expected node id and role, found \(fields.count) fields")
                }
                guard let node = index[fields[0]] else {
                    throw DatasetError(path: splitPath, line: number, reason: "unknown node '\(fields[0])'")
                }
                switch fields[1] {
                case "train": roles[Int(node)] = .train
                case "val", "validation": roles[Int(node)] = .validation
                case "test": roles[Int(node)] = .test
                default: throw DatasetError(path: splitPath, line: number, reason: "role '\(fields[1])' is not train, val or test")
                }
            }
        } else {
            roles = planetoidSplit(labels: labels, classCount: classes.count, seed: seed)
        }
        return Graph(nodeCount: index.count, edges: edges, features: features, featureCount: featureCount,
                     labels: labels, classCount: classes.count, roles: roles)
    }

    /// 20 training nodes per class, then 500 validation and 1,000 test nodes, drawn from `seed`.
    static func planetoidSplit(labels: [Int32], classCount: Int, seed: UInt64) -> [NodeRole] {
        var generator = SplitMix64(seed: seed, stream: "split")
        var order = Array(labels.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, generator.nextInt(below: i + 1)) }
        var roles = [NodeRole](repeating: .unlabelled, count: labels.count)
        var perClass = [Int](repeating: 0, count: classCount)
        var rest: [Int] = []
        for node in order {
            if perClass[Int(labels[node])] < 20 {
                perClass[Int(labels[node])] += 1
                roles[node] = .train
            } else {
                rest.append(node)
            }
        }
        for node in rest.prefix(500) { roles[node] = .validation }
        for node in rest.dropFirst(500).prefix(1000) { roles[node] = .test }
        return roles
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
