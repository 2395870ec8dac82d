import Foundation

/// What the graph readers leave to the caller.
public struct GraphReadOptions: Sendable {
    /// Seed of the split drawn when the files carry none (see `DrawnSplit`).
    public var seed: UInt64 = 0
    /// An edge naming a node the graph does not have: stop with its file and line, or leave it
    /// out and count it.
    public var onBadEdge: BadRowPolicy = .fail
    /// OGB layout: the `split/<name>` directory to use when there are several.
    public var split: String?

    public init(seed: UInt64 = 0, onBadEdge: BadRowPolicy = .fail, split: String? = nil) {
        self.seed = seed
        self.onBadEdge = onBadEdge
        self.split = split
    }
}

/// A graph read from files, with what the reader decided on its own, which a user must hear:
/// a drawn split, skipped edges.
public struct LoadedGraph: Sendable {
    public let graph: Graph
    /// Whether the files carried no split, so that `DrawnSplit` drew one.
    public let splitDrawn: Bool
    /// Edges left out for naming a node the graph does not have (`onBadEdge: .skip`).
    public let skippedEdges: Int
    /// One line each, to print before training.
    public let notes: [String]

    /// The graph of `nodeCount` nodes from what a reader found: labels negative for unlabelled
    /// nodes, `roles` nil when the files carry no split (one is drawn from `options.seed`).
    /// No labelled node at all is an error of `labelsPath`.
    init(source: String, nodeCount: Int, edges: EdgeList, features: [Float], featureCount: Int, labels: [Int32],
         roles: [NodeRole]?, labelsPath: String, options: GraphReadOptions) throws(DatasetError) {
        let classCount = Int(labels.max() ?? -1) + 1
        guard classCount > 0 else { throw DatasetError(path: labelsPath, line: 0, reason: "no node has a label") }
        guard classCount <= nodeCount else {
            throw DatasetError(path: labelsPath, line: 0, reason: "label \(classCount - 1) makes more classes than the graph has nodes (\(nodeCount))")
        }
        var notes: [String] = []
        if let note = edges.note { notes.append(note) }
        splitDrawn = roles == nil
        if splitDrawn {
            notes.append("no split in \(source): drew one from --seed \(options.seed), \(DrawnSplit.description)")
        }
        let roles = roles ?? DrawnSplit.roles(labels: labels, classCount: classCount, seed: options.seed)
        graph = Graph(nodeCount: nodeCount, edges: edges.edges, features: features, featureCount: featureCount,
                      labels: labels.map { max($0, 0) }, classCount: classCount, roles: roles)
        skippedEdges = edges.skipped
        self.notes = notes
    }
}

/// Edges as a reader finds them. One naming a node the graph does not have stops the reader
/// with its file and place (`.fail`), or is left out and counted (`.skip`) for one note at the end.
struct EdgeList {
    /// How a file's places are named: text by 1-based line, arrays by 0-based edge index.
    enum Places { case lines, edges }

    let path: String
    let places: Places
    let policy: BadRowPolicy
    /// What the bad edges' nodes are, for the note: "outside 0..<2708", "not in cora.content".
    let missing: String
    private(set) var edges: [(Int32, Int32)] = []
    private(set) var skipped = 0
    /// The places of the first skipped edges, for the note.
    private var firstSkipped: [Int] = []

    init(path: String, places: Places, policy: BadRowPolicy, missing: String, capacity: Int = 0) {
        self.path = path
        self.places = places
        self.policy = policy
        self.missing = missing
        edges.reserveCapacity(capacity)
    }

    /// Adds the edge (a, b) at `place` when both nodes are in 0..<nodeCount.
    @inline(__always)
    mutating func append(_ a: Int64, _ b: Int64, nodeCount: Int, at place: Int) throws(DatasetError) {
        let n = Int64(nodeCount)
        guard a >= 0, a < n, b >= 0, b < n else {
            try reject(at: place, reason: "names node \(a >= 0 && a < n ? b : a), outside 0..<\(nodeCount)")
            return
        }
        edges.append((Int32(truncatingIfNeeded: a), Int32(truncatingIfNeeded: b)))
    }

    /// Adds an edge between nodes already known to exist.
    mutating func append(_ a: Int32, _ b: Int32) { edges.append((a, b)) }

    /// An edge at `place` that names a node the graph does not have, for `reason`.
    mutating func reject(at place: Int, reason: String) throws(DatasetError) {
        if policy == .fail {
            switch places {
            case .lines: throw DatasetError(path: path, line: place, reason: reason)
            case .edges: throw DatasetError(path: path, line: 0, reason: "edge \(place) \(reason)")
            }
        }
        skipped += 1
        if firstSkipped.count < 10 { firstSkipped.append(place) }
    }

    /// "skipped 12 edges naming nodes outside 0..<2708 (edge.csv lines 5, 19, ...)", or nil.
    var note: String? {
        guard skipped > 0 else { return nil }
        let name = URL(fileURLWithPath: path).lastPathComponent
        let place = switch places { case .lines: "line"; case .edges: "edge" }
        let listed = firstSkipped.map(String.init).joined(separator: ", ") + (skipped > firstSkipped.count ? ", ..." : "")
        return skipped == 1
            ? "skipped 1 edge naming a node \(missing) (\(name) \(place) \(listed))"
            : "skipped \(skipped) edges naming nodes \(missing) (\(name) \(place)s \(listed))"
    }
}

/// Roles a split file gives, checked as they are given.
enum NodeRoles {
    /// Gives `node` the role `role`; nil when it could, else why not: it already has one, or
    /// it has no label to learn or score.
    static func assign(_ role: NodeRole, to node: Int, in roles: inout [NodeRole], labels: [Int32]) -> String? {
        guard roles[node] == .unlabelled else { return "node \(node) is already \(name(roles[node]))" }
        guard labels[node] >= 0 else { return "node \(node) has no label, so it cannot be \(name(role))" }
        roles[node] = role
        return nil
    }

    private static func name(_ role: NodeRole) -> String {
        switch role {
        case .train: "a training node"
        case .validation: "a validation node"
        case .test: "a test node"
        case .unlabelled: "unlabelled"
        }
    }
}

/// Scratch memory for the parsers' hot loops, grown to what it must hold.
struct ScratchBuffer<Element>: ~Copyable {
    private(set) var base: UnsafeMutablePointer<Element>
    private var capacity: Int

    init(capacity: Int = 1024) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit { base.deallocate() }

    /// Room for at least `count` elements, keeping the first `kept`.
    mutating func reserve(_ count: Int, keeping kept: Int) {
        guard count > capacity else { return }
        let grown = UnsafeMutablePointer<Element>.allocate(capacity: max(count, capacity * 2))
        grown.moveInitialize(from: base, count: kept)
        base.deallocate()
        base = grown
        capacity = max(count, capacity * 2)
    }

    /// Stores `value` at `i`, the first place not yet stored (elements are plain numbers).
    @inline(__always)
    mutating func store(_ value: Element, at i: Int) {
        if i == capacity { reserve(i + 1, keeping: i) }
        base[i] = value
    }
}

extension ScratchBuffer where Element == CChar {
    /// `bytes` followed by a NUL, as strtof and strtod read text.
    mutating func nulTerminated(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeMutablePointer<CChar> {
        reserve(bytes.count + 1, keeping: 0)
        if let source = bytes.baseAddress { UnsafeMutableRawPointer(base).copyMemory(from: source, byteCount: bytes.count) }
        base[bytes.count] = 0
        return base
    }
}

/// Text helpers shared by the readers of text layouts.
enum GraphText {
    /// `directory` and `components` joined by slashes, without doubling one at the end of `directory`.
    static func path(_ directory: String, _ components: String...) -> String {
        ([directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory] + components).joined(separator: "/")
    }

    /// `path`, or `path.gz` when only that exists; nil when neither does.
    static func existing(_ path: String) -> String? {
        let manager = FileManager.default
        if manager.fileExists(atPath: path) { return path }
        if manager.fileExists(atPath: path + ".gz") { return path + ".gz" }
        return nil
    }

    /// The lines of one file, plain or gzip, read as `LineStream` reads Criteo data.
    static func lines(_ path: String) throws(DatasetError) -> LineStream {
        try LineStream(DataInputs(file: path))
    }

    /// The non-negative decimal integer that fills `bytes`, or nil (also past Int64).
    @inline(__always)
    static func index(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            let digit = Int64(byte) - 0x30
            guard digit >= 0, digit <= 9 else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    /// A line for an error message, cut short.
    static func quoted(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let text = String(decoding: bytes.prefix(40), as: UTF8.self)
        return "'\(text)\(bytes.count > 40 ? "..." : "")'"
    }
}
