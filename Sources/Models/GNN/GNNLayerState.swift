/// Which set of activations a pass of a stage reads and writes.
enum GNNPass { case training, evaluation }

/// One buffer per pass: training's, and evaluation's, made at the first evaluation. Apart, an
/// evaluation never overwrites the rows training left for the next epoch (historical embeddings).
final class PassBuffers<Buffer> {
    private let training: Buffer
    private let make: () -> Buffer
    private lazy var evaluation: Buffer = make()

    init(_ make: @escaping () -> Buffer) {
        training = make()
        self.make = make
    }

    subscript(pass: GNNPass) -> Buffer {
        switch pass {
        case .training: training
        case .evaluation: evaluation
        }
    }
}

/// A layer's input after dropout: dense rows, or only the non-zeros of sparse features (layer 0).
enum DroppedInput {
    case dense(PassBuffers<NodeBuffer>)
    case sparse(SparseFeatures, PassBuffers<SparseValues>)
}

/// Values at the non-zeros of `SparseFeatures`, one per non-zero.
final class SparseValues {
    var values: [Float]

    init(count: Int) { values = [Float](repeating: 0, count: count) }
}

/// A hidden layer's input after dropout, per pass, and which of its elements training's dropout
/// kept, so that backward reads the mask instead of hashing every element again.
struct DroppedHidden {
    let rows: PassBuffers<NodeBuffer>
    let kept: KeptElements

    subscript(pass: GNNPass) -> NodeBuffer { rows[pass] }
}

/// Gradient of the node-indexed rows a layer aggregates, and the part of it that reached rows
/// whose forward value was historical, kept for the next epoch.
struct AggregationGradient {
    let current: NodeBuffer
    let deferred: NodeBuffer
}

/// The buffers of one owned layer, made by its kind: what forward keeps for backward, per pass,
/// and the gradients of training.
final class LayerState {
    /// The layer's index in the model.
    let layer: Int
    /// H_{l+1}, per pass.
    let output: PassBuffers<NodeBuffer>
    /// dL/dH_{l+1}.
    let outputGradient: NodeBuffer
    let kind: Kind

    enum Kind {
        /// GCN layer 0: dropout(X), its product with W (the rows it aggregates) and their gradient.
        case inputConvolution(input: DroppedInput, product: PassBuffers<NodeBuffer>, gradient: AggregationGradient)
        /// GCN layer: dropout(H) (the rows it aggregates), Â·dropout(H), and Z where the layer adds
        /// its input (residual GCN), since H + ReLU(Z) does not give ReLU's mask.
        case convolution(dropped: DroppedHidden, aggregated: PassBuffers<NodeBuffer>,
                         preActivation: PassBuffers<NodeBuffer>?, gradient: AggregationGradient)
        /// GCNII layer: dropout(H) (the rows it aggregates) and S = (1-α) Â dropout(H) + α H0.
        case initialResidualConvolution(dropped: DroppedHidden, mixed: PassBuffers<NodeBuffer>, gradient: AggregationGradient)
        /// GCNII layer 0: dropout(X).
        case inputLinear(input: DroppedInput)
        /// GCNII last layer: dropout(H) and its gradient.
        case outputLinear(dropped: DroppedHidden, droppedGradient: NodeBuffer)
    }

    /// The buffers of layer `l` of `config` over `rows` nodes; `sparseInput` for layer 0 on sparse features.
    init(layer l: Int, config c: GNNConfig, rows n: Int, sparseInput: SparseFeatures?) {
        layer = l
        let i = c.inputWidth(of: l), o = c.outputWidth(of: l)
        let perPass = { (width: Int) in PassBuffers { NodeBuffer(rows: n, width: width) } }
        output = perPass(o)
        outputGradient = NodeBuffer(rows: n, width: o)
        let aggregation = { (width: Int) in
            AggregationGradient(current: NodeBuffer(rows: n, width: width), deferred: NodeBuffer(rows: n, width: width))
        }
        let hidden = { DroppedHidden(rows: perPass(i), kept: KeptElements(rows: n, width: i)) }
        let features: () -> DroppedInput = {
            guard let sparseInput else { return .dense(perPass(i)) }
            return .sparse(sparseInput, PassBuffers { SparseValues(count: sparseInput.values.count) })
        }
        kind = switch c.kind(of: l) {
        case .inputConvolution: .inputConvolution(input: features(), product: perPass(o), gradient: aggregation(o))
        case .convolution:
            .convolution(dropped: hidden(), aggregated: perPass(i), preActivation: c.hasResidual(l) ? perPass(o) : nil,
                         gradient: aggregation(i))
        case .initialResidualConvolution: .initialResidualConvolution(dropped: hidden(), mixed: perPass(i), gradient: aggregation(i))
        case .inputLinear: .inputLinear(input: features())
        case .outputLinear: .outputLinear(dropped: hidden(), droppedGradient: NodeBuffer(rows: n, width: i))
        }
    }

    /// The node-indexed rows the layer reads from its neighbours, and their gradient; nil when
    /// it reads none.
    var aggregation: (rows: PassBuffers<NodeBuffer>, gradient: AggregationGradient)? {
        switch kind {
        case .inputConvolution(_, let product, let gradient): (product, gradient)
        case .convolution(let dropped, _, _, let gradient), .initialResidualConvolution(let dropped, _, let gradient): (dropped.rows, gradient)
        case .inputLinear, .outputLinear: nil
        }
    }
}
