/// How DLRM combines the bottom MLP's output with the pooled embeddings.
public enum Interaction: String, Codable, CaseIterable, Sendable {
    /// The bottom output followed by the strict lower triangle of the pairwise dot products of
    /// [bottom output, embeddings] (pairs (i, j), j < i, row by row as the reference orders them).
    case dot
    /// The bottom output and the embeddings side by side.
    case cat
}

/// The shape of a DLRM: MLPs, tables and interaction. Validated on creation, so every model
/// built from one is consistent.
public struct DLRMConfig: Codable, Hashable, Sendable {
    /// Bottom MLP sizes, dense feature count first (`13-512-256-64`).
    public var bottomMLP: [Int]
    /// Top MLP sizes after its input (`512-256-1`); the input width follows from the rest.
    public var topMLP: [Int]
    public var tables: [EmbeddingTableSpec]
    public var interaction: Interaction

    public init(bottomMLP: [Int], topMLP: [Int], tables: [EmbeddingTableSpec], interaction: Interaction = .dot) throws(ConfigError) {
        self.bottomMLP = bottomMLP
        self.topMLP = topMLP
        self.tables = tables
        self.interaction = interaction
        try validate()
    }

    public var denseFeatures: Int { bottomMLP[0] }
    public var embeddingDim: Int { bottomMLP[bottomMLP.count - 1] }

    /// Width of the interaction output, the top MLP's input.
    public var interactionWidth: Int {
        let d = embeddingDim, n = tables.count
        switch interaction {
        case .dot: return d + (n + 1) * n / 2
        case .cat: return d + tables.reduce(0) { $0 + $1.dim }
        }
    }

    public var topSizes: [Int] { [interactionWidth] + topMLP }

    public func validate() throws(ConfigError) {
        guard bottomMLP.count >= 2 else { throw ConfigError("the bottom MLP needs an input and an output size, got \(Self.spec(bottomMLP))") }
        guard !topMLP.isEmpty else { throw ConfigError("the top MLP needs at least its output size") }
        for (name, sizes) in [("bottom", bottomMLP), ("top", topMLP)] where sizes.contains(where: { $0 <= 0 }) {
            throw ConfigError("the \(name) MLP \(Self.spec(sizes)) has a layer of size 0 or less")
        }
        guard topMLP.last == 1 else { throw ConfigError("the top MLP must end in 1 output (a click logit), got \(Self.spec(topMLP))") }
        guard !tables.isEmpty else { throw ConfigError("a DLRM needs at least one embedding table") }
        for table in tables {
            guard table.rows > 0, table.rows <= Int(Int32.max) else { throw ConfigError("table \(table.name) has \(table.rows) rows (1 ... \(Int32.max))") }
            guard table.dim > 0 else { throw ConfigError("table \(table.name) has dim \(table.dim)") }
            if interaction == .dot, table.dim != embeddingDim {
                throw ConfigError("dot interaction needs every embedding as wide as the bottom MLP's output: table \(table.name) has dim \(table.dim), the bottom MLP \(Self.spec(bottomMLP)) ends in \(embeddingDim) (cat interaction takes any dims)")
            }
        }
    }

    /// Bytes one rank needs, roughly, to train on `samples` samples a step holding `share` of
    /// the tables' rows: MLP weights with their gradients and optimizer state, activations and
    /// their gradients, embedding rows with an accumulator. Sums in `Double`, so a size no
    /// machine has gives a large number rather than an overflow.
    public func estimatedBytes(samples: Int, share: Double) -> Double {
        func layers(_ sizes: [Int]) -> (parameters: Double, widths: Double) {
            zip(sizes, sizes.dropFirst()).reduce((0, Double(sizes[0]))) { sum, layer in
                (sum.parameters + Double(layer.0) * Double(layer.1) + Double(layer.1), sum.widths + Double(layer.1))
            }
        }
        let bottom = layers(bottomMLP), top = layers(topSizes)
        let embeddingWidths = tables.reduce(0.0) { $0 + Double($1.dim) }
        let rows = tables.reduce(0.0) { $0 + Double($1.rows) * Double($1.dim + 1) }
        return 4 * (3 * (bottom.parameters + top.parameters) + 2 * Double(samples) * (bottom.widths + top.widths + embeddingWidths)
                    + rows * share)
    }

    /// Sizes from a spec like `13-512-256-64`.
    public static func parseSizes(_ spec: String, separator: Character = "-", name: String) throws(ConfigError) -> [Int] {
        let parts = spec.split(separator: separator, omittingEmptySubsequences: false)
        var sizes: [Int] = []
        for part in parts {
            guard let size = Int(part), size > 0 else {
                throw ConfigError("\(name) '\(spec)': '\(part)' is not a positive size")
            }
            sizes.append(size)
        }
        return sizes
    }

    static func spec(_ sizes: [Int]) -> String { sizes.map(String.init).joined(separator: "-") }
}
