import Foundation
import Models
import TestSupport
import Testing

/// Writes `files` (paths relative to `directory`) as UTF-8 text, making directories on the way.
func writeFiles(_ files: [String: String], in directory: URL) throws {
    for (path, text) in files {
        let url = directory.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
}

/// Compresses `path` to `path.gz` with /bin/gzip, removing `path`.
func gzip(_ path: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-f", path]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
}

/// The message a read fails with, or nil when it succeeds.
func failure<T>(_ read: () throws -> T) -> String? {
    do {
        _ = try read()
        return nil
    } catch {
        return "\(error)"
    }
}

/// Six nodes with three features, two classes (nodes 4 and 5 unlabelled: NaN and empty), a
/// path of five edges and one split, in OGB's layout.
let ogbFiles = [
    "raw/node-feat.csv": "1,0,0\n0,1.0,0\n0,0,1\n0.5e0,0.5,0\n0,1,1\n1,0,1\n",
    "raw/node-label.csv": "0\n1\n0\n1\nnan\n\n",
    "raw/edge.csv": "0,1\n1,2\n2,3\n3,4\n4,5\n",
    "raw/num-node-list.csv": "6\n",
    "split/time/train.csv": "0\n1\n",
    "split/time/valid.csv": "2\n",
    "split/time/test.csv": "3\n",
]

@Suite struct OGBReaderTests {
    /// Reads `files` (the reference set with these changes; nil removes a file) as an OGB directory.
    func read(_ changes: [String: String?] = [:], gzipped: Bool = false, options: GraphReadOptions = GraphReadOptions()) throws -> LoadedGraph {
        try withTemporaryDirectory("ogb") { directory in
            var files = ogbFiles
            for (path, text) in changes { files[path] = text }
            try writeFiles(files, in: directory)
            if gzipped { for path in files.keys { try gzip(directory.appendingPathComponent(path).path) } }
            return try OGBReader.read(directory: directory.path, options: options)
        }
    }

    @Test(arguments: [false, true])
    func readsFeaturesLabelsEdgesAndSplit(gzipped: Bool) throws {
        let loaded = try read(gzipped: gzipped)
        let graph = loaded.graph
        #expect(graph.nodeCount == 6 && graph.edgeCount == 5 && graph.featureCount == 3 && graph.classCount == 2)
        #expect(graph.labels == [0, 1, 0, 1, 0, 0])
        #expect(graph.roles == [.train, .train, .validation, .test, .unlabelled, .unlabelled])
        #expect(graph.features[9..<12] == [0.5, 0.5, 0], "rows are scaled to unit L1 norm")
        #expect(!loaded.splitDrawn && loaded.skippedEdges == 0 && loaded.notes.isEmpty)
    }

    @Test func severalSplitsNeedAChoice() throws {
        let other: [String: String?] = ["split/random/train.csv": "1\n", "split/random/valid.csv": "0\n", "split/random/test.csv": "2\n"]
        #expect(failure { try read(other) }?.hasSuffix("/split: holds several splits (random, time); choose one with --split") == true)
        let graph = try read(other, options: GraphReadOptions(split: "random")).graph
        #expect(graph.roles[0...2] == [.validation, .train, .test])
        #expect(failure { try read(options: GraphReadOptions(split: "year")) }?.hasSuffix("/split: no split 'year'; the splits are time") == true)
    }

    @Test func anEdgeOutsideTheNodesFailsWithFileAndLineOrIsSkipped() throws {
        let edges = "0,1\n1,2\n2,9\n3,4\n7,5\n"
        let message = try #require(failure { try read(["raw/edge.csv": edges]) })
        #expect(message.hasSuffix("/raw/edge.csv:3: names node 9, outside 0..<6"), "\(message)")
        let skipped = try read(["raw/edge.csv": edges], options: GraphReadOptions(onBadEdge: .skip))
        #expect(skipped.skippedEdges == 2 && skipped.graph.edgeCount == 3)
        #expect(skipped.notes == ["skipped 2 edges naming nodes outside 0..<6 (edge.csv lines 3, 5)"])
    }

    @Test(arguments: [
        ("raw/node-feat.csv", "1,0,0\n0,1\n", "raw/node-feat.csv:2: 2 values, earlier rows have 3"),
        ("raw/node-feat.csv", "1,0,0\n0,nan,1\n", "raw/node-feat.csv:2: value 2 is 'nan', not a finite number"),
        ("raw/node-feat.csv", "1,0,0\n0;1;0\n", "raw/node-feat.csv:2: expected a comma after value 1, found ';1;0'"),
        ("raw/node-feat.csv", "1,0,0\n0,1,0\n0,0,1\n1,1,0\n0,1,1\n", "raw/node-feat.csv: 5 feature rows, but"),
        ("raw/node-label.csv", "0\n1\n0\n1\n", "raw/node-label.csv: 4 labels for 6 nodes (one line per node, empty or NaN when unlabelled)"),
        ("raw/node-label.csv", "0\n1\n0\n1,0\n1\n1\n", "raw/node-label.csv:4: several values; only single-label classification is read"),
        ("raw/node-label.csv", "0\n1\n0\nx\n1\n1\n", "raw/node-label.csv:4: 'x' is not a class number"),
        ("raw/edge.csv", "0,1\n1 2\n", "raw/edge.csv:2: expected two node ids 'src,dst', found '1 2'"),
        ("split/time/test.csv", "3\n4\n", "split/time/test.csv:2: node 4 has no label, so it cannot be a test node"),
        ("split/time/test.csv", "1\n", "split/time/test.csv:1: node 1 is already a training node"),
        ("split/time/test.csv", "6\n", "split/time/test.csv:1: '6' is not a node id in 0..<6"),
    ])
    func badInputNamesFileAndLine(file: String, text: String, message: String) throws {
        let error = try #require(failure { try read([file: text]) })
        #expect(error.contains(message), "\(error)")
    }

    @Test func aMissingFileIsNamed() throws {
        #expect(failure { try read(["raw/node-label.csv": nil]) }?.hasSuffix("/raw/node-label.csv: missing (nor is there a .gz)") == true)
    }
}

@Suite struct DrawnSplitTests {
    @Test func withoutASplitOneIsDrawnFromTheSeedPerClass() throws {
        // 3 classes of 50, 10 and 3 nodes, and 2 unlabelled nodes.
        let labels = [Int32](repeating: 0, count: 50) + [Int32](repeating: 1, count: 10) + [2, 2, 2, -1, -1]
        let roles = DrawnSplit.roles(labels: labels, classCount: 3, seed: 7)
        #expect(roles == DrawnSplit.roles(labels: labels, classCount: 3, seed: 7))
        #expect(roles != DrawnSplit.roles(labels: labels, classCount: 3, seed: 8))
        func count(_ role: NodeRole, _ label: Int32) -> Int { zip(roles, labels).filter { $0 == role && $1 == label }.count }
        #expect([NodeRole.train, .validation, .test].map { count($0, 0) } == [30, 10, 10])
        #expect([NodeRole.train, .validation, .test].map { count($0, 1) } == [6, 2, 2])
        #expect([NodeRole.train, .validation, .test].map { count($0, 2) } == [1, 1, 1])
        #expect(roles.suffix(2) == [.unlabelled, .unlabelled])
        #expect(DrawnSplit.roles(labels: [0, 1, 1], classCount: 2, seed: 0).filter { $0 == .train }.count == 2,
                "every class trains on one node, however small")
    }

    @Test func anOGBDirectoryWithoutSplitGetsTheDrawnOneAndSaysSo() throws {
        try withTemporaryDirectory("ogb-nosplit") { directory in
            var files = ogbFiles.filter { !$0.key.hasPrefix("split/") }
            files["raw/node-label.csv"] = "0\n1\n0\n1\n0\n1\n"
            try writeFiles(files, in: directory)
            let loaded = try OGBReader.read(directory: directory.path, options: GraphReadOptions(seed: 3))
            #expect(loaded.splitDrawn)
            #expect(loaded.notes == ["no split in \(directory.path): drew one from --seed 3, per class 60% train, 20% validation, 20% test"])
            #expect(loaded.graph.roles == DrawnSplit.roles(labels: loaded.graph.labels, classCount: 2, seed: 3))
            #expect(Set(loaded.graph.nodes(.train).map { loaded.graph.labels[Int($0)] }) == [0, 1])
            #expect(loaded.graph.nodes(.test).count == 2)
            let again = try OGBReader.read(directory: directory.path, options: GraphReadOptions(seed: 3))
            #expect(again.graph.roles == loaded.graph.roles)
        }
    }

    @Test func aLINQSDirectoryWithoutSplitGetsTheSameDrawnSplit() throws {
        try withTemporaryDirectory("linqs-nosplit") { root in
            let directory = root.appendingPathComponent("tiny")
            let content = (0..<10).map { "n\($0)\t1\t\($0)\t\($0 % 2 == 0 ? "x" : "y")" }.joined(separator: "\n") + "\n"
            try writeFiles(["tiny.content": content, "tiny.cites": "n0\tn1\nn1\tn2\n"], in: directory)
            let loaded = try LINQSReader.read(directory: directory.path, options: GraphReadOptions(seed: 5))
            #expect(loaded.splitDrawn && loaded.notes.count == 1)
            #expect(loaded.graph.roles == DrawnSplit.roles(labels: loaded.graph.labels, classCount: 2, seed: 5))
        }
    }
}

/// A .npy file as np.save writes it: magic, version, header padded to 64 bytes, data.
func npy(_ descr: String, _ shape: [Int], _ data: [UInt8], fortran: Bool = false, version: UInt8 = 1) -> Data {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }"
    let preamble = version == 1 ? 10 : 12
    header += String(repeating: " ", count: (64 - (preamble + header.utf8.count + 1) % 64) % 64) + "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
    let length = header.utf8.count
    bytes += version == 1 ? [UInt8(length & 0xff), UInt8(length >> 8)] : (0..<4).map { UInt8((length >> (8 * $0)) & 0xff) }
    return Data(bytes + Array(header.utf8) + data)
}

/// The bytes of `values` as they lie in memory (little-endian here).
func raw<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

@Suite struct NumPyReaderTests {
    static let features: [Float] = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 0.5, 0, 0, 1, 1, 1, 0, 1]
    static let edges: [(Int64, Int64)] = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]

    /// The six-node graph of `ogbFiles` as float32 features, int64 labels, (E, 2) int64 edges
    /// and bool masks.
    static let reference: [String: Data] = [
        "features.npy": npy("<f4", [6, 3], raw(features)),
        "labels.npy": npy("<i8", [6], raw([0, 1, 0, 1, -1, -1] as [Int64])),
        "edges.npy": npy("<i8", [5, 2], raw(edges.flatMap { [$0.0, $0.1] })),
        "train.npy": npy("|b1", [6], [1, 1, 0, 0, 0, 0]),
        "valid.npy": npy("|b1", [6], [0, 0, 1, 0, 0, 0]),
        "test.npy": npy("|b1", [6], [0, 0, 0, 1, 0, 0]),
    ]

    /// The same graph in the other formats: float64 features, int32 labels, (2, E) int32 edges,
    /// index splits with val.npy, and format versions 2 and 3.
    static let alternative: [String: Data] = [
        "features.npy": npy("<f8", [6, 3], raw(features.map(Double.init)), version: 2),
        "labels.npy": npy("<i4", [6], raw([0, 1, 0, 1, -1, -7] as [Int32]), version: 3),
        "edges.npy": npy("<i4", [2, 5], raw(edges.map { Int32($0.0) } + edges.map { Int32($0.1) })),
        "train.npy": npy("<i8", [2], raw([1, 0] as [Int64])),
        "val.npy": npy("<i4", [1], raw([2] as [Int32])),
        "test.npy": npy("<i8", [1], raw([3] as [Int64])),
    ]

    func read(_ files: [String: Data], changes: [String: Data?] = [:], options: GraphReadOptions = GraphReadOptions()) throws -> LoadedGraph {
        try withTemporaryDirectory("npy") { directory in
            var files = files
            for (name, data) in changes { files[name] = data }
            for (name, data) in files { try data.write(to: directory.appendingPathComponent(name)) }
            return try NumPyReader.read(directory: directory.path, options: options)
        }
    }

    @Test func bothFormatsOfTheSameGraphReadTheSame() throws {
        let expected = try read(Self.reference).graph
        #expect(expected.nodeCount == 6 && expected.edgeCount == 5 && expected.featureCount == 3 && expected.classCount == 2)
        #expect(expected.labels == [0, 1, 0, 1, 0, 0])
        #expect(expected.roles == [.train, .train, .validation, .test, .unlabelled, .unlabelled])
        let ogb = try OGBReaderTests().read().graph
        let other = try read(Self.alternative).graph
        for graph in [ogb, other] {
            #expect(graph.features == expected.features && graph.labels == expected.labels && graph.roles == expected.roles)
            #expect(graph.adjacency.rowOffsets == expected.adjacency.rowOffsets && graph.adjacency.columns == expected.adjacency.columns)
        }
    }

    @Test func withoutSplitFilesASplitIsDrawn() throws {
        let loaded = try read(Self.reference, changes: ["train.npy": nil, "valid.npy": nil, "test.npy": nil], options: GraphReadOptions(seed: 2))
        #expect(loaded.splitDrawn && loaded.graph.roles == DrawnSplit.roles(labels: [0, 1, 0, 1, -1, -1], classCount: 2, seed: 2))
        #expect(failure { try read(Self.reference, changes: ["test.npy": nil]) }?
            .hasSuffix(": has train.npy and valid.npy but no test.npy; give train, valid (or val) and test, or none to have a split drawn") == true)
    }

    @Test func anEdgeOutsideTheNodesFailsOrIsSkipped() throws {
        let edges = npy("<i8", [3, 2], raw([0, 1, 1, 6, 2, 3] as [Int64]))
        #expect(failure { try read(Self.reference, changes: ["edges.npy": edges]) }?.hasSuffix("/edges.npy: edge 1 names node 6, outside 0..<6") == true)
        let skipped = try read(Self.reference, changes: ["edges.npy": edges], options: GraphReadOptions(onBadEdge: .skip))
        #expect(skipped.skippedEdges == 1 && skipped.graph.edgeCount == 2)
        #expect(skipped.notes == ["skipped 1 edge naming a node outside 0..<6 (edges.npy edge 1)"])
    }

    @Test(arguments: [
        ("features.npy", Data("not numpy at all".utf8), "features.npy: not a .npy file (no \\x93NUMPY magic at its start)"),
        ("features.npy", Data([0x93] + Array("NUMPY".utf8) + [1, 0, 9, 0] + Array("{'descr': ".utf8)),
         "features.npy: a malformed .npy header: {'descr':"),
        ("features.npy", npy("<f4", [6, 3], raw(features), fortran: true),
         "features.npy: stored in Fortran order; save it in C order (np.save(path, np.ascontiguousarray(a)))"),
        ("features.npy", npy(">f4", [6, 3], raw(features)), "features.npy: big-endian '>f4'; only little-endian arrays are read"),
        ("features.npy", npy("<f4", [6, 3], raw(Array(features.dropLast()))), "features.npy: holds 68 bytes of data; shape (6, 3) of float32 needs 72"),
        ("features.npy", npy("<i8", [6, 3], raw(features.map { Int64($0) })), "features.npy: dtype '<i8' (int64); expected float32 or float64"),
        ("features.npy", npy("<f4", [18], raw(features)), "features.npy: shape (18,); features must be 2-D, (nodes, features)"),
        ("features.npy", npy("<f4", [6, 3], raw([Float.nan] + features.dropFirst())), "features.npy: row 0, column 0 is nan, not a finite number"),
        ("labels.npy", npy("<f8", [6], raw([0, 1, 0, 1, 0, 1] as [Double])), "labels.npy: dtype '<f8' (float64); expected int32 or int64"),
        ("labels.npy", npy("<i8", [5], raw([0, 1, 0, 1, 0] as [Int64])), "labels.npy: shape (5,); expected one label per node, (6,)"),
        ("labels.npy", npy("<i8", [6], raw([0, 1, 0, 1, 0, 1_000_000] as [Int64])),
         "labels.npy: label 1000000 makes more classes than the graph has nodes (6)"),
        ("edges.npy", npy("<i8", [5, 3], raw([Int64](repeating: 0, count: 15))), "edges.npy: shape (5, 3); edges must be (E, 2) or (2, E)"),
        ("edges.npy", npy("<u2", [5, 2], raw([UInt16](repeating: 0, count: 10))), "edges.npy: dtype '<u2'; expected int32 or int64"),
        ("train.npy", npy("|b1", [5], [1, 1, 0, 0, 0]), "train.npy: a mask of 5 entries over 6 nodes"),
        ("train.npy", npy("<i8", [2], raw([0, 6] as [Int64])), "train.npy: entry 1 is node 6, outside 0..<6"),
        ("train.npy", npy("<i8", [2], raw([0, 2] as [Int64])), "valid.npy: node 2 is already a training node"),
        ("train.npy", npy("<f4", [2], raw([0, 1] as [Float])), "train.npy: dtype '<f4' (float32); expected node indices (int32, int64) or a bool mask"),
    ])
    func badArraysAreOneClearLine(file: String, data: Data, message: String) throws {
        let error = try #require(failure { try read(Self.reference, changes: [file: data]) })
        #expect(error.hasSuffix("/" + message) || error.contains("/" + message), "\(error)")
    }
}

@Suite struct LINQSBadEdgeTests {
    @Test func aCiteOfANodeMissingFromContentFailsOrIsSkipped() throws {
        try withTemporaryDirectory("linqs-cites") { root in
            let directory = root.appendingPathComponent("tiny")
            try writeFiles(["tiny.content": "a\t1\tx\nb\t2\ty\n", "tiny.cites": "a\tb\nb\tz\nq\ta\n", "tiny.split": "a\ttrain\nb\ttest\n"],
                           in: directory)
            #expect(failure { try LINQSReader.read(directory: directory.path) }?.hasSuffix("/tiny.cites:2: unknown node 'z'") == true)
            let loaded = try LINQSReader.read(directory: directory.path, options: GraphReadOptions(onBadEdge: .skip))
            #expect(loaded.skippedEdges == 2 && loaded.graph.edgeCount == 1 && !loaded.splitDrawn)
            #expect(loaded.notes == ["skipped 2 edges naming nodes not in tiny.content (tiny.cites lines 2, 3)"])
        }
    }
}

@Suite struct GraphLayoutTests {
    @Test func theLayoutIsToldByTheFiles() throws {
        try withTemporaryDirectory("layouts") { root in
            let linqs = root.appendingPathComponent("tiny"), ogb = root.appendingPathComponent("ogb")
            let numpy = root.appendingPathComponent("npy"), empty = root.appendingPathComponent("empty")
            try writeFiles(["tiny.content": "a\t1\tx\n", "tiny.cites": ""], in: linqs)
            try writeFiles(["raw/edge.csv": "0,1\n"], in: ogb)
            try gzip(ogb.appendingPathComponent("raw/edge.csv").path)
            try writeFiles(["features.npy": ""], in: numpy)
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            #expect(try GraphLayout.detect(linqs.path) == .linqs(name: "tiny"))
            #expect(try GraphLayout.detect(ogb.path) == .ogb)
            #expect(try GraphLayout.detect(numpy.path) == .numpy)
            #expect(failure { try GraphLayout.detect(empty.path) } == "\(empty.path): no graph layout found: looked for <name>.content with "
                + "<name>.cites (LINQS), raw/edge.csv or raw/edge.csv.gz (OGB) and features.npy (NumPy)")
            #expect(failure { try GraphLayout.detect(root.appendingPathComponent("none").path) } == "\(root.path)/none: no such directory")
            #expect(failure { try GraphLayout.linqs(name: "tiny").read(linqs.path, options: GraphReadOptions(split: "time")) }?
                .hasSuffix("--split time picks one of an OGB directory's split/<name>; this is LINQS data") == true)
        }
    }
}
