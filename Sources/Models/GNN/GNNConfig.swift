import Foundation

/// The layer stack of a node-classification GNN.
public enum GNNArchitecture: String, CaseIterable, Codable, Sendable {
    /// Kipf & Welling's GCN; with `residual`, hidden layers add their input (deep GCN).
    case gcn
    /// GCNII (Chen et al. 2020): input and output linear layers around convolutions with initial
    /// residual α·H0 and identity mapping (1-β)I + βW, β = log(λ/l + 1).
    case gcnii
}

/// Hyper-parameters of a GNN and its training.
public struct GNNConfig: Codable, Sendable, Hashable {
    public var architecture: GNNArchitecture = .gcn
    /// Layers including the input and output layers.
    public var layers = 2
    public var inputWidth: Int
    public var hidden = 16
    public var classes: Int
    public var dropout: Float = 0.5
    public var residual = false
    public var alpha: Float = 0.1
    public var lambda: Float = 0.5
    public var learningRate: Float = 0.01
    /// L2 decay of the weights of GCN layer 0 (every GCN layer with `decayAllLayers`) and of
    /// GCNII's input and output layers; biases are never decayed.
    public var weightDecay: Float = 5e-4
    /// L2 decay of GCNII's convolution weights: its paper's 0.01, which keeps the identity
    /// mapping (1-β)I + βW close to the identity.
    public var convolutionWeightDecay: Float = 0.01
    /// GCN: Kipf & Welling decay only the first layer's weights; true decays every layer.
    public var decayAllLayers = false
    public var seed: UInt64 = 0

    public init(inputWidth: Int, classes: Int) {
        self.inputWidth = inputWidth
        self.classes = classes
    }

    /// What one layer computes.
    public enum LayerKind: Sendable {
        /// GCN layer 0: Â (dropout(X) W) + b, transform first (X is wide and fixed).
        case inputConvolution
        /// GCN layer: (Â dropout(H)) W + b, aggregate first.
        case convolution
        /// GCNII layer 0: dropout(X) W + b.
        case inputLinear
        /// GCNII layer: ((1-α) Â dropout(H) + α H0) ((1-β) I + β W).
        case initialResidualConvolution
        /// GCNII last layer: dropout(H) W + b.
        case outputLinear
    }

    public func kind(of layer: Int) -> LayerKind {
        switch architecture {
        case .gcn: layer == 0 ? .inputConvolution : .convolution
        case .gcnii: layer == 0 ? .inputLinear : layer == layers - 1 ? .outputLinear : .initialResidualConvolution
        }
    }

    public func inputWidth(of layer: Int) -> Int { layer == 0 ? inputWidth : hidden }
    public func outputWidth(of layer: Int) -> Int { layer == layers - 1 ? classes : hidden }

    /// True when the layer reads its neighbours (and so needs halo rows in graph parallelism).
    public func aggregates(_ layer: Int) -> Bool {
        switch kind(of: layer) {
        case .inputConvolution, .convolution, .initialResidualConvolution: true
        case .inputLinear, .outputLinear: false
        }
    }

    /// Width of the rows a layer aggregates over its neighbours.
    public func aggregationWidth(of layer: Int) -> Int {
        kind(of: layer) == .inputConvolution ? outputWidth(of: layer) : inputWidth(of: layer)
    }

    func hasBias(_ layer: Int) -> Bool { kind(of: layer) != .initialResidualConvolution }

    /// L2 decay of layer `l`'s weights.
    public func weightDecay(of l: Int) -> Float {
        switch kind(of: l) {
        case .initialResidualConvolution: convolutionWeightDecay
        case .inputLinear, .outputLinear: weightDecay
        case .inputConvolution, .convolution: decayAllLayers || l == 0 ? weightDecay : 0
        }
    }

    /// GCNII's identity-mapping strength at a layer.
    func beta(_ layer: Int) -> Float { Float(Foundation.log(Double(lambda) / Double(layer) + 1)) }

    /// Layers that add their input to their output.
    func hasResidual(_ layer: Int) -> Bool {
        architecture == .gcn && residual && kind(of: layer) == .convolution && layer < layers - 1
    }

    /// Estimated multiply-adds of a layer over a graph, for balancing pipeline stages.
    public func cost(of layer: Int, nodes: Int, nonzeros: Int) -> Double {
        let n = Double(nodes), nnz = Double(nonzeros)
        let i = Double(inputWidth(of: layer)), o = Double(outputWidth(of: layer))
        let dense = n * i * o
        let sparse = aggregates(layer) ? nnz * Double(aggregationWidth(of: layer)) : 0
        let loss = layer == layers - 1 ? n * o * 4 : 0
        return 3 * (dense + sparse) + loss  // forward plus a backward twice as heavy
    }

    /// Throws when the shape cannot be built.
    public func validate() throws(ConfigError) {
        guard inputWidth > 0, classes > 1 else { throw ConfigError("need at least one feature and two classes") }
        guard hidden > 0 else { throw ConfigError("--hidden must be at least 1") }
        switch architecture {
        case .gcn: guard layers >= 2 else { throw ConfigError("gcn needs at least 2 layers, got \(layers)") }
        case .gcnii: guard layers >= 3 else { throw ConfigError("gcnii needs at least 3 layers (input, one convolution, output), got \(layers)") }
        }
        guard dropout >= 0, dropout < 1 else { throw ConfigError("--dropout must be in [0, 1), got \(dropout)") }
        guard learningRate > 0, weightDecay >= 0, convolutionWeightDecay >= 0 else {
            throw ConfigError("--lr must be positive, --weight-decay and --conv-weight-decay at least 0")
        }
    }
}
