/// A run of consecutive layers of a GNN, computed on contiguous ranges of nodes ("chunks") of
/// one graph. Single-rank training is one stage over one chunk; the layer pipeline gives each
/// rank a stage and streams chunks through; graph parallelism gives each rank all layers over
/// its partition. Between the steps of a layer the caller may exchange halo rows
/// (`copyAggregationRows`, `setAggregationRows` and their gradients' counterparts).
///
/// Rows of later chunks keep last epoch's values (historical embeddings). A gradient that flows
/// into such a row is stale: it is kept for the next epoch (`StaleGradients.deferred`, as
/// PipeGCN does) or dropped. With `staleMomentum` above 0, both historical rows and deferred
/// gradients are moving averages over epochs (PipeGCN's smoothing).
public final class GNNStage {
    /// What happens to gradients through edges whose forward used a historical embedding.
    public enum StaleGradients: String, CaseIterable, Codable, Sendable { case deferred, dropped }

    public let config: GNNConfig
    public let layers: Range<Int>
    public let graph: Graph
    public var staleGradients = StaleGradients.deferred
    /// Momentum of the moving averages that stand in for historical rows and deferred gradients
    /// in pipelined epochs, in 0..<1; 0 uses last epoch's values as they are.
    public var staleMomentum: Float = 0 {
        didSet { precondition(staleMomentum >= 0 && staleMomentum < 1, "a stale momentum is in 0..<1, not \(staleMomentum)") }
    }
    /// Original node ids, for dropout keys that do not depend on the numbering.
    let originalIDs: [Int32]

    /// This stage's weights and biases, layer after layer, in one buffer.
    public var parameters: [Float] {
        didSet { precondition(parameters.count == oldValue.count, "a stage's parameter count is fixed") }
    }
    public private(set) var gradients: [Float]
    private var optimizer: Adam
    private let decays: [Float]
    private let weightOffset: [Int]
    private let biasOffset: [Int?]

    /// Per owned layer, its buffers.
    let states: [LayerState]
    /// Rows entering the stage (H at its first layer), per pass; nil on the first stage, which
    /// reads the features.
    private let input: PassBuffers<NodeBuffer>?
    /// Gradient of the rows entering the stage; nil on the first stage.
    private let inputGradient: NodeBuffer?
    /// GCNII's H0 when the stage does not own layer 0 (it arrives with the input), per pass.
    private let receivedInitial: PassBuffers<NodeBuffer>?
    /// GCNII: gradient with respect to H0.
    private let initialGradient: NodeBuffer?
    /// The pass under way: which activations forward and backward read and write.
    private(set) var pass = GNNPass.training
    /// Per owned layer, this pass's dropout (none in evaluation).
    private(set) var masks: [DropoutMask] = []
    /// Smoothed historical rows and deferred gradients, made at the first pipelined epoch with a momentum.
    private var staleAverages: StaleAverages?
    /// True once a training epoch has left rows behind for the next one to read.
    private var hasHistory = false
    /// Time spent in sparse aggregation (SpMM) and dense products (GEMM) since the last reset.
    public private(set) var sparseTimer = KernelTimer()
    public private(set) var denseTimer = KernelTimer()
    public var sparseSeconds: Double { sparseTimer.seconds }
    public var denseSeconds: Double { denseTimer.seconds }

    public func resetKernelTimers() {
        sparseTimer.reset()
        denseTimer.reset()
    }

    @inline(__always)
    func timed(_ sparse: Bool, _ body: () -> Void) {
        if sparse { sparseTimer.measure(body) } else { denseTimer.measure(body) }
    }

    /// True once a backward pass has routed a gradient to the stale buffers this epoch.
    private var holdsStaleGradients = false
    /// dZ of the layer in backward, rows from 0.
    private let outputDelta: NodeBuffer
    /// The gradient a layer's backward passes to its aggregation, rows from 0; also where stale
    /// parts go in a layer that keeps none.
    let scratch: NodeBuffer

    /// A stage of `layers` over `graph`; parameters are initialised per layer from the config's
    /// seed, so every rank builds the same weights for the same layer.
    public init(config: GNNConfig, graph: Graph, layers: Range<Int>, originalIDs: [Int32]? = nil) {
        self.config = config
        self.graph = graph
        self.layers = layers
        self.originalIDs = originalIDs ?? (0..<graph.nodeCount).map { Int32($0) }
        var offsets: [Int] = [], biases: [Int?] = [], total = 0
        var values: [Float] = [], decays: [Float] = []
        for l in layers {
            let i = config.inputWidth(of: l), o = config.outputWidth(of: l)
            offsets.append(total)
            // Glorot uniform weights, zero biases (as Kipf & Welling and PyG).
            var rng = SplitMix64(seed: config.seed, stream: "gnn-init", index: UInt64(l))
            let bound = (6 / Float(i + o)).squareRoot()
            values += (0..<(i * o)).map { _ in (rng.nextFloat() * 2 - 1) * bound }
            decays += [Float](repeating: config.weightDecay(of: l), count: i * o)
            total += i * o
            if config.hasBias(l) {
                biases.append(total)
                values += [Float](repeating: 0, count: o)
                decays += [Float](repeating: 0, count: o)
                total += o
            } else {
                biases.append(nil)
            }
        }
        parameters = values
        gradients = [Float](repeating: 0, count: total)
        self.decays = decays
        weightOffset = offsets
        biasOffset = biases
        optimizer = Adam(parameterCount: total, learningRate: config.learningRate)
        let n = graph.nodeCount
        let widest = (layers.lowerBound...layers.upperBound).map { max(config.inputWidth(of: min($0, config.layers - 1)), config.hidden, config.classes) }.max() ?? 1
        outputDelta = NodeBuffer(rows: n, width: widest)
        scratch = NodeBuffer(rows: n, width: widest)
        let sparseInput = layers.lowerBound == 0 ? SparseFeatures(graph) : nil
        states = layers.map { LayerState(layer: $0, config: config, rows: n, sparseInput: $0 == 0 ? sparseInput : nil) }
        let entering = config.inputWidth(of: layers.lowerBound)
        let receivesInput = layers.lowerBound > 0
        input = receivesInput ? PassBuffers { NodeBuffer(rows: n, width: entering) } : nil
        inputGradient = receivesInput ? NodeBuffer(rows: n, width: entering) : nil
        let gcnii = config.architecture == .gcnii
        receivedInitial = gcnii && receivesInput ? PassBuffers { NodeBuffer(rows: n, width: config.hidden) } : nil
        initialGradient = gcnii ? NodeBuffer(rows: n, width: config.hidden) : nil
    }

    public var ownsFirstLayer: Bool { layers.lowerBound == 0 }
    public var ownsLastLayer: Bool { layers.upperBound == config.layers }
    /// Width of the rows that enter the stage (and of their gradients), H0 included for GCNII.
    public var inputWidth: Int { ownsFirstLayer ? 0 : config.inputWidth(of: layers.lowerBound) * (config.architecture == .gcnii ? 2 : 1) }
    /// Width of the rows that leave the stage, H0 included for GCNII when a stage follows.
    public var outputWidth: Int { config.outputWidth(of: layers.upperBound - 1) * (config.architecture == .gcnii && !ownsLastLayer ? 2 : 1) }

    // MARK: - Epochs

    /// Starts a training epoch (dropout on, gradients cleared, deferred gradients brought in)
    /// or an evaluation pass (dropout off, separate activations). A `pipelined` epoch reads
    /// historical rows: with a stale momentum they are first averaged with the earlier ones.
    public func beginEpoch(_ epoch: Int, training: Bool, pipelined: Bool = false) {
        pass = training ? .training : .evaluation
        masks = layers.map { DropoutMask(probability: training ? config.dropout : 0, seed: config.seed, epoch: epoch, layer: $0) }
        guard training else { return }
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        let averages = pipelined ? currentStaleAverages() : nil
        if let averages, hasHistory {
            for (i, state) in states.enumerated() {
                if let rows = state.aggregation?.rows { averages.smoothEmbeddings(i, rows: rows[.training].pointer) }
            }
        }
        for (i, state) in states.enumerated() {
            switch state.kind {
            case .inputConvolution(_, _, let gradient), .convolution(_, _, _, let gradient), .initialResidualConvolution(_, _, let gradient):
                bringInDeferred(gradient, layer: i, averages: averages)
            case .outputLinear(_, let droppedGradient):
                droppedGradient.zero()
            case .inputLinear:
                break
            }
        }
        holdsStaleGradients = false
        initialGradient?.zero()
        if !pipelined { staleAverages?.startOver() }
        hasHistory = true
    }

    /// Starts owned layer `i`'s aggregation gradient from the stale gradients of last epoch
    /// (their moving average with `averages`), or from zero when they are dropped or none.
    private func bringInDeferred(_ gradient: AggregationGradient, layer i: Int, averages: StaleAverages?) {
        let current = gradient.current, deferred = gradient.deferred
        guard holdsStaleGradients else { return current.zero() }
        if staleGradients == .dropped {
            current.zero()
        } else if let averages {
            averages.smoothGradients(i, stale: deferred, into: current)
        } else {
            current.pointer.update(from: deferred.pointer, count: current.rows * current.width)
        }
        deferred.zero()
    }

    /// The stale averages for the current momentum (nil at 0), allocated once.
    private func currentStaleAverages() -> StaleAverages? {
        guard staleMomentum > 0 else { return nil }
        if staleAverages?.momentum != staleMomentum {
            let widths = layers.map { config.aggregates($0) ? config.aggregationWidth(of: $0) : nil }
            staleAverages = StaleAverages(momentum: staleMomentum, rows: graph.nodeCount, widths: widths)
        }
        return staleAverages
    }

    /// One Adam step on this stage's parameters from the gradients of the epoch.
    public func step() {
        optimizer.update(&parameters, gradients: gradients, decays: decays)
    }

    /// Replaces the gradients (after they were summed across ranks).
    public func withGradients<R>(_ body: (inout [Float]) throws -> R) rethrows -> R { try body(&gradients) }

    // MARK: - Forward

    /// Copies the stage's input rows (and H0 after them for GCNII) from `values` (rows, inputWidth).
    public func setInput(rows: Range<Int>, from values: UnsafePointer<Float>) {
        guard let input else { preconditionFailure("the first stage reads the features, not input rows") }
        let level = input[pass], width = level.width, initial = receivedInitial?[pass]
        for (k, row) in rows.enumerated() {
            level.row(row).update(from: values + k * inputWidth, count: width)
            if let initial { initial.row(row).update(from: values + k * inputWidth + width, count: width) }
        }
    }

    /// Copies the stage's output rows (and H0 for GCNII) into `values` (rows, outputWidth).
    public func copyOutput(rows: Range<Int>, into values: UnsafeMutablePointer<Float>) {
        let level = states[states.count - 1].output[pass], width = level.width
        for (k, row) in rows.enumerated() {
            (values + k * outputWidth).update(from: level.row(row), count: width)
            if outputWidth > width { (values + k * outputWidth + width).update(from: initialRows.row(row), count: width) }
        }
    }

    /// First step of layer `l` on `rows`: dropout of its input (and X·W for GCN layer 0).
    public func prepare(_ l: Int, rows: Range<Int>) {
        let i = l - layers.lowerBound
        switch states[i].kind {
        case .inputConvolution(let input, let product, _):
            dropFeatures(input, layer: i, rows: rows)
            weights(i) { w in inputConvolutionTransform(product[pass], input, w, rows: rows) }
        case .inputLinear(let input):
            dropFeatures(input, layer: i, rows: rows)
        case .convolution(let dropped, _, _, _), .initialResidualConvolution(let dropped, _, _), .outputLinear(let dropped, _):
            dropHidden(dropped, layerInput(i), layer: i, rows: rows)
        }
    }

    /// Second step of layer `l` on `rows`: aggregation, transform and activation into H_{l+1}.
    public func compute(_ l: Int, rows: Range<Int>) {
        let i = l - layers.lowerBound, state = states[i]
        let out = state.output[pass]
        var preActivation: NodeBuffer?
        weights(i) { w in
            switch state.kind {
            case .inputConvolution(_, let product, _):
                inputConvolutionForward(out, product[pass], rows: rows)
            case .convolution(let dropped, let aggregated, let z, _):
                preActivation = z?[pass]
                convolutionForward(preActivation ?? out, aggregated[pass], dropped[pass], w, rows: rows)
            case .initialResidualConvolution(let dropped, let mixed, _):
                initialResidualForward(out, mixed[pass], dropped[pass], initialRows, w, rows: rows, layer: l)
            case .inputLinear(let input):
                linearForward(out, input, w, rows: rows)
            case .outputLinear(let dropped, _):
                linearForward(out, .dense(dropped.rows), w, rows: rows)
            }
        }
        let start = rows.lowerBound, count = rows.count, o = config.outputWidth(of: l)
        if let b = biasOffset[i] {
            let target = preActivation ?? out
            parameters.withUnsafeBufferPointer { p in addBias(target.row(start), p.baseAddress! + b, rows: count, n: o) }
        }
        guard l != config.layers - 1 else { return }
        if let z = preActivation {
            // Deep GCN: H_{l+1} = ReLU(Z) + H_l.
            let input = layerInput(i)
            for row in rows {
                let orow = out.row(row), zrow = z.row(row), hrow = input.row(row)
                for c in 0..<o { orow[c] = max(zrow[c], 0) + hrow[c] }
            }
        } else {
            for row in rows {
                let orow = out.row(row)
                for c in 0..<o { orow[c] = max(orow[c], 0) }
            }
        }
    }

    /// Runs every layer of the stage on `rows`, with no exchange between steps.
    public func forward(rows: Range<Int>) {
        for l in layers {
            prepare(l, rows: rows)
            compute(l, rows: rows)
        }
    }

    // MARK: - Loss and metrics

    /// Mean cross-entropy over the training nodes, `trainCount` being their number over all
    /// chunks and ranks; writes the logits' gradient for `rows`.
    public func loss(rows: Range<Int>, trainCount: Int) -> (loss: Double, correct: Int, counted: Int) {
        precondition(ownsLastLayer, "only the last stage computes the loss")
        let last = states[states.count - 1], logits = last.output[pass], gradient = last.outputGradient
        return graph.labels.withUnsafeBufferPointer { labels in
            graph.roles.withUnsafeBufferPointer { roles in
                SoftmaxCrossEntropy.forwardBackward(
                    logits: logits.pointer, labels: labels.baseAddress!, include: { roles[$0] == .train },
                    rows: rows, classes: config.classes, divisor: Float(max(trainCount, 1)), dLogits: gradient.pointer)
            }
        }
    }

    /// Correct predictions and node counts for `role` among `rows`.
    public func accuracy(rows: Range<Int>, role: NodeRole) -> (correct: Int, counted: Int) {
        precondition(ownsLastLayer, "only the last stage has the logits")
        let logits = states[states.count - 1].output[pass]
        return graph.labels.withUnsafeBufferPointer { labels in
            graph.roles.withUnsafeBufferPointer { roles in
                SoftmaxCrossEntropy.correctPredictions(logits: logits.pointer, labels: labels.baseAddress!,
                                                       include: { roles[$0] == role }, rows: rows, classes: config.classes)
            }
        }
    }

    // MARK: - Backward

    /// Copies the gradient of the stage's output rows (and of H0 for GCNII) from `values`.
    public func setOutputGradient(rows: Range<Int>, from values: UnsafePointer<Float>) {
        let gradient = states[states.count - 1].outputGradient, width = gradient.width
        for (k, row) in rows.enumerated() {
            gradient.row(row).update(from: values + k * outputWidth, count: width)
            if outputWidth > width, let initialGradient {
                let g0 = initialGradient.row(row), incoming = values + k * outputWidth + width
                for c in 0..<width { g0[c] += incoming[c] }
            }
        }
    }

    /// Copies the gradient of the stage's input rows (and of H0 for GCNII) into `values`.
    public func copyInputGradient(rows: Range<Int>, into values: UnsafeMutablePointer<Float>) {
        guard let inputGradient else { preconditionFailure("the first stage has no input rows to pass a gradient to") }
        let width = inputGradient.width
        for (k, row) in rows.enumerated() {
            (values + k * inputWidth).update(from: inputGradient.row(row), count: width)
            if inputWidth > width, let initialGradient {
                (values + k * inputWidth + width).update(from: initialGradient.row(row), count: width)
            }
        }
    }

    /// First backward step of layer `l` on `rows`: parameter gradients, and the aggregation's
    /// gradient scattered to neighbours. `chunkOf[j] > chunk` marks a neighbour whose forward
    /// value was historical: its part goes to the stale buffer.
    public func backward(_ l: Int, rows: Range<Int>, chunkOf: UnsafePointer<Int32>? = nil, chunk: Int32 = 0) {
        let i = l - layers.lowerBound, state = states[i]
        let o = config.outputWidth(of: l), count = rows.count
        let dZ = outputDelta.pointer
        outputDeltaBackward(dZ, state, rows: rows)
        if chunkOf != nil { holdsStaleGradients = true }
        let stale = { (into: NodeBuffer) in chunkOf.map { (chunkOf: $0, chunk: chunk, into: into.pointer) } }
        gradientsAndWeights(i) { dW, w in
            if let b = biasOffset[i] { biasBackward(dW - weightOffset[i] + b, dZ, rows: count, n: o) }
            switch state.kind {
            case .inputConvolution(_, _, let gradient):
                inputConvolutionBackward(gradient.current, dZ, rows: rows, stale: stale(gradient.deferred))
            case .convolution(_, let aggregated, _, let gradient):
                convolutionBackward(gradient.current, dW, dZ, aggregated[pass], w, rows: rows, layer: l, stale: stale(gradient.deferred))
            case .initialResidualConvolution(_, let mixed, let gradient):
                guard let initialGradient else { preconditionFailure("a GCNII stage keeps the gradient of H0") }
                initialResidualBackward(gradient.current, initialGradient, dW, dZ, mixed[pass], w, rows: rows, layer: l,
                                        stale: stale(gradient.deferred))
            case .inputLinear(let input):
                linearBackwardWeight(dW, input, dZ, rows: rows, layer: l)
            case .outputLinear(let dropped, let droppedGradient):
                linearBackwardWeight(dW, .dense(dropped.rows), dZ, rows: rows, layer: l)
                linearBackwardInput(droppedGradient, dZ, w, rows: rows, layer: l)
            }
        }
    }

    /// dZ (rows, o), rows from 0, of owned layer `state`: through ReLU (read off Z or H_{l+1}),
    /// plus the gradient of H0 at GCNII's input layer, whose output is H0.
    private func outputDeltaBackward(_ dZ: UnsafeMutablePointer<Float>, _ state: LayerState, rows: Range<Int>) {
        let o = config.outputWidth(of: state.layer), gOut = state.outputGradient
        var reluSource = state.output[pass]
        if case .convolution(_, _, let z?, _) = state.kind { reluSource = z[pass] }
        var addsInitial: NodeBuffer?
        if case .inputLinear = state.kind { addsInitial = initialGradient }
        let isLast = state.layer == config.layers - 1
        for (k, row) in rows.enumerated() {
            let d = dZ + k * o, g = gOut.row(row), a = reluSource.row(row)
            if let g0 = addsInitial?.row(row) {
                for c in 0..<o { d[c] = a[c] > 0 ? g[c] + g0[c] : 0 }
            } else if isLast {
                d.update(from: g, count: o)
            } else {
                for c in 0..<o { d[c] = a[c] > 0 ? g[c] : 0 }
            }
        }
    }

    /// Last backward step of layer `l` on `rows`, once every contribution to them has arrived:
    /// the gradient of H_l (through dropout and the residual), or of W for GCN layer 0.
    public func finish(_ l: Int, rows: Range<Int>) {
        let i = l - layers.lowerBound
        switch states[i].kind {
        case .inputConvolution(let input, _, let gradient):
            gradientsAndWeights(i) { dW, _ in inputConvolutionBackwardWeight(dW, input, gradient.current, rows: rows) }
        case .inputLinear:
            break
        case .convolution(let dropped, _, _, let gradient), .initialResidualConvolution(let dropped, _, let gradient):
            dropHiddenBackward(layerInputGradient(i), gradient.current, kept: dropped.kept, layer: i, rows: rows)
        case .outputLinear(let dropped, let droppedGradient):
            dropHiddenBackward(layerInputGradient(i), droppedGradient, kept: dropped.kept, layer: i, rows: rows)
        }
    }

    /// Runs backward over every layer of the stage on `rows`, with no exchange between steps.
    public func backward(rows: Range<Int>, chunkOf: UnsafePointer<Int32>? = nil, chunk: Int32 = 0) {
        for l in layers.reversed() {
            backward(l, rows: rows, chunkOf: chunkOf, chunk: chunk)
            finish(l, rows: rows)
        }
    }

    // MARK: - Halo rows

    /// Copies rows `nodes` of what layer `l` aggregates into `values` (one row after another):
    /// rows other partitions read as their halo.
    public func copyAggregationRows(_ l: Int, rows nodes: [Int32], into values: UnsafeMutablePointer<Float>) {
        copy(aggregation(l).rows[pass], rows: nodes, into: values)
    }

    /// Sets rows `nodes` of what layer `l` aggregates from `values`: halo rows from another
    /// partition, current or historical.
    public func setAggregationRows(_ l: Int, rows nodes: [Int32], from values: UnsafePointer<Float>) {
        let rows = aggregation(l).rows[pass], width = rows.width
        for (k, node) in nodes.enumerated() { rows.row(Int(node)).update(from: values + k * width, count: width) }
    }

    /// Copies rows `nodes` of the gradient layer `l`'s backward scattered to its aggregated rows
    /// into `values`: the part owed to the partitions that own those rows.
    public func copyAggregationGradient(_ l: Int, rows nodes: [Int32], into values: UnsafeMutablePointer<Float>) {
        copy(aggregation(l).gradient.current, rows: nodes, into: values)
    }

    /// Adds `values` to rows `nodes` of layer `l`'s aggregation gradient: other partitions'
    /// contributions to rows this partition owns.
    public func addAggregationGradient(_ l: Int, rows nodes: [Int32], from values: UnsafePointer<Float>) {
        let gradient = aggregation(l).gradient.current, width = gradient.width
        for (k, node) in nodes.enumerated() {
            let target = gradient.row(Int(node)), source = values + k * width
            for c in 0..<width { target[c] += source[c] }
        }
    }

    /// Clears rows `nodes` of layer `l`'s aggregation gradient, once sent to their owners.
    public func clearAggregationGradient(_ l: Int, rows nodes: [Int32]) {
        let gradient = aggregation(l).gradient.current
        for node in nodes { gradient.row(Int(node)).update(repeating: 0, count: gradient.width) }
    }

    /// Clears every aggregation gradient outside `own`: in graph partitions only a partition's
    /// own rows carry deferred gradients into the next epoch.
    public func dropStaleGradients(outside own: Range<Int>) {
        for state in states {
            guard let gradient = state.aggregation?.gradient.current else { continue }
            gradient.zero(0..<own.lowerBound)
            gradient.zero(own.upperBound..<gradient.rows)
        }
    }

    // MARK: - Internals

    /// H0 of GCNII: the output of layer 0, owned or received.
    var initialRows: NodeBuffer { receivedInitial?[pass] ?? states[0].output[pass] }

    /// H_l, the rows owned layer `i` reads: the layer before's output, or the stage's input.
    private func layerInput(_ i: Int) -> NodeBuffer {
        if i > 0 { return states[i - 1].output[pass] }
        guard let input else { preconditionFailure("layer 0 reads the features") }
        return input[pass]
    }

    /// dL/dH_l of owned layer `i`'s input.
    private func layerInputGradient(_ i: Int) -> NodeBuffer {
        if i > 0 { return states[i - 1].outputGradient }
        guard let inputGradient else { preconditionFailure("layer 0 passes no gradient to the features") }
        return inputGradient
    }

    private func aggregation(_ l: Int) -> (rows: PassBuffers<NodeBuffer>, gradient: AggregationGradient) {
        guard let aggregation = states[l - layers.lowerBound].aggregation else { preconditionFailure("layer \(l) reads no neighbours") }
        return aggregation
    }

    private func copy(_ buffer: NodeBuffer, rows nodes: [Int32], into values: UnsafeMutablePointer<Float>) {
        let width = buffer.width
        for (k, node) in nodes.enumerated() { (values + k * width).update(from: buffer.row(Int(node)), count: width) }
    }

    /// Where owned layer `i`'s weights and bias sit in `parameters` and `gradients`.
    func parameterRange(ofLayer i: Int) -> Range<Int> {
        weightOffset[i]..<(i + 1 < weightOffset.count ? weightOffset[i + 1] : parameters.count)
    }

    /// The weights of owned layer `i`.
    func weights(_ i: Int, _ body: (UnsafePointer<Float>) -> Void) {
        parameters.withUnsafeBufferPointer { body($0.baseAddress! + weightOffset[i]) }
    }

    /// The weight gradient and the weights of owned layer `i`.
    private func gradientsAndWeights(_ i: Int, _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Void) {
        let offset = weightOffset[i]
        parameters.withUnsafeBufferPointer { p in
            gradients.withUnsafeMutableBufferPointer { g in body(g.baseAddress! + offset, p.baseAddress! + offset) }
        }
    }
}
