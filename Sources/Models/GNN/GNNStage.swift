/// A run of consecutive layers of a GNN, computed on contiguous ranges of nodes ("chunks") of
/// one graph. Single-rank training is one stage over one chunk; the layer pipeline gives each
/// rank a stage and streams chunks through; graph parallelism gives each rank all layers over
/// its partition. Between the steps of a layer the caller may exchange halo rows
/// (`aggregationRows`, `aggregationGradientRows`).
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

    /// Activations of one pass; training and evaluation keep separate sets so an evaluation
    /// never overwrites the historical embeddings.
    final class Activations {
        /// H_l for levels first...last (level 0 is the features and stays nil).
        var levels: [NodeBuffer?]
        /// Per owned layer: dropout of its input (X for layer 0).
        var dropped: [NodeBuffer?]
        /// Per owned layer: what backward needs (Â·H for convolutions, S for GCNII, X·W for layer 0).
        var saved: [NodeBuffer?]
        /// Per owned layer: pre-activations where the output cannot give the ReLU mask (residual GCN).
        var preActivations: [NodeBuffer?]
        /// H0 for GCNII when the stage does not own layer 0.
        var initial: NodeBuffer?
        /// Dropout of sparse features' non-zeros (layer 0 on sparse features).
        var droppedSparse: [Float] = []

        init(_ stage: GNNStage) {
            let n = stage.graph.nodeCount, c = stage.config
            levels = (stage.layers.lowerBound...stage.layers.upperBound).map { level in
                level == 0 ? nil : NodeBuffer(rows: n, width: c.outputWidth(of: level - 1))
            }
            dropped = stage.layers.map { l in
                l == 0 && stage.sparseInput != nil ? nil : NodeBuffer(rows: n, width: c.inputWidth(of: l))
            }
            droppedSparse = [Float](repeating: 0, count: stage.sparseInput?.values.count ?? 0)
            saved = stage.layers.map { l in
                switch c.kind(of: l) {
                case .inputConvolution: NodeBuffer(rows: n, width: c.outputWidth(of: l))
                case .convolution, .initialResidualConvolution: NodeBuffer(rows: n, width: c.inputWidth(of: l))
                case .inputLinear, .outputLinear: nil
                }
            }
            preActivations = stage.layers.map { c.hasResidual($0) ? NodeBuffer(rows: n, width: c.outputWidth(of: $0)) : nil }
            if c.architecture == .gcnii && stage.layers.lowerBound > 0 { initial = NodeBuffer(rows: n, width: c.hidden) }
        }
    }

    /// Layer 0's input as sparse rows, when the features are mostly zeros.
    let sparseInput: SparseFeatures?
    private var training: Activations!
    private var evaluation: Activations?
    private var active: Activations!
    private var isTraining = true
    private var masks: [DropoutMask] = []

    /// Per level first...last: gradient of the loss with respect to H_level.
    private var levelGradients: [NodeBuffer?] = []
    /// Per owned layer: gradient with respect to the rows it aggregates (or its dropped input).
    private var aggregationGradients: [NodeBuffer?] = []
    /// Per owned layer: stale gradients kept for the next epoch.
    private var deferredGradients: [NodeBuffer?] = []
    /// GCNII: gradient with respect to H0.
    private var initialGradient: NodeBuffer?
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
    private func timed(_ sparse: Bool, _ body: () -> Void) {
        if sparse { sparseTimer.measure(body) } else { denseTimer.measure(body) }
    }

    /// True once a backward pass has routed a gradient to the stale buffers this epoch.
    private var holdsStaleGradients = false
    private var scratchA: NodeBuffer
    private var scratchB: NodeBuffer
    private var epoch = 0

    /// A stage of `layers` over `graph`; parameters are initialised per layer from the config's
    /// seed, so every rank builds the same weights for the same layer.
    public init(config: GNNConfig, graph: Graph, layers: Range<Int>, originalIDs: [Int32]? = nil) {
        self.config = config
        self.graph = graph
        self.layers = layers
        self.originalIDs = originalIDs ?? (0..<graph.nodeCount).map { Int32($0) }
        sparseInput = layers.lowerBound == 0 ? SparseFeatures(graph) : nil
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
        scratchA = NodeBuffer(rows: n, width: widest)
        scratchB = NodeBuffer(rows: n, width: widest)
        training = Activations(self)
        active = training
        levelGradients = (layers.lowerBound...layers.upperBound).map { level in
            level == 0 ? nil : NodeBuffer(rows: n, width: config.outputWidth(of: level - 1))
        }
        aggregationGradients = layers.map { l in
            config.kind(of: l) == .inputLinear ? nil : NodeBuffer(rows: n, width: config.aggregationWidth(of: l))
        }
        deferredGradients = layers.map { l in config.aggregates(l) ? NodeBuffer(rows: n, width: config.aggregationWidth(of: l)) : nil }
        if config.architecture == .gcnii { initialGradient = NodeBuffer(rows: n, width: config.hidden) }
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
        self.epoch = epoch
        isTraining = training
        if training {
            active = self.training
        } else {
            if evaluation == nil { evaluation = Activations(self) }
            active = evaluation
        }
        masks = layers.map { DropoutMask(probability: training ? config.dropout : 0, seed: config.seed, epoch: epoch, layer: $0) }
        guard training else { return }
        gradients.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        let averages = pipelined ? currentStaleAverages() : nil
        if let averages, hasHistory {
            for (i, l) in layers.enumerated() where config.aggregates(l) { averages.smoothEmbeddings(i, rows: aggregationRows(l).pointer) }
        }
        for (i, gradient) in aggregationGradients.enumerated() {
            guard let gradient else { continue }
            if let deferred = deferredGradients[i], holdsStaleGradients {
                if staleGradients == .dropped {
                    gradient.zero()
                } else if let averages {
                    averages.smoothGradients(i, stale: deferred, into: gradient)
                } else {
                    gradient.pointer.update(from: deferred.pointer, count: gradient.rows * gradient.width)
                }
                deferred.zero()
            } else {
                gradient.zero()
            }
        }
        holdsStaleGradients = false
        initialGradient?.zero()
        if !pipelined { staleAverages?.startOver() }
        hasHistory = true
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
        let level = active.levels[0]!, width = level.width
        for (k, row) in rows.enumerated() {
            level.row(row).update(from: values + k * inputWidth, count: width)
            if let initial = active.initial { initial.row(row).update(from: values + k * inputWidth + width, count: width) }
        }
    }

    /// Copies the stage's output rows (and H0 for GCNII) into `values` (rows, outputWidth).
    public func copyOutput(rows: Range<Int>, into values: UnsafeMutablePointer<Float>) {
        let level = active.levels[layers.count]!, width = level.width
        for (k, row) in rows.enumerated() {
            (values + k * outputWidth).update(from: level.row(row), count: width)
            if outputWidth > width { (values + k * outputWidth + width).update(from: initialRows.row(row), count: width) }
        }
    }

    /// First step of layer `l` on `rows`: dropout of its input (and X·W for GCN layer 0).
    public func prepare(_ l: Int, rows: Range<Int>) {
        let i = l - layers.lowerBound
        let width = config.inputWidth(of: l)
        if l == 0, let sparse = sparseInput {
            originalIDs.withUnsafeBufferPointer { ids in
                sparse.drop(&active.droppedSparse, rows: rows, mask: masks[i], originalIDs: ids.baseAddress!)
            }
            if config.kind(of: l) == .inputConvolution {
                weights(l) { w in
                    timed(false) { sparse.multiply(active.droppedSparse, rows: rows, w: w, n: config.outputWidth(of: l), out: active.saved[i]!.pointer) }
                }
            }
            return
        }
        let dropped = active.dropped[i]!
        graph.features.withUnsafeBufferPointer { features in
            originalIDs.withUnsafeBufferPointer { ids in
                let input = l == 0 ? features.baseAddress! : UnsafePointer(active.levels[i]!.pointer)
                masks[i].apply(dropped.pointer, input, rows: rows, width: width, originalIDs: ids.baseAddress!)
            }
        }
        if config.kind(of: l) == .inputConvolution {
            weights(l) { w in
                timed(false) { matmulForward(active.saved[i]!.row(rows.lowerBound), dropped.row(rows.lowerBound), w,
                              rows: rows.count, k: width, n: config.outputWidth(of: l)) }
            }
        }
    }

    /// The node-indexed rows layer `l` reads from its neighbours: where halo rows go.
    public func aggregationRows(_ l: Int) -> (pointer: UnsafeMutablePointer<Float>, width: Int) {
        let i = l - layers.lowerBound
        let buffer = config.kind(of: l) == .inputConvolution ? active.saved[i]! : active.dropped[i]!
        return (buffer.pointer, buffer.width)
    }

    /// Second step of layer `l` on `rows`: aggregation, transform and activation into H_{l+1}.
    public func compute(_ l: Int, rows: Range<Int>) {
        let i = l - layers.lowerBound
        let o = config.outputWidth(of: l), width = config.inputWidth(of: l)
        let out = active.levels[i + 1]!
        let isLast = l == config.layers - 1
        let start = rows.lowerBound, count = rows.count
        weights(l) { w in
            switch config.kind(of: l) {
            case .inputConvolution:
                timed(true) { graph.adjacency.multiplyRows(rows, x: active.saved[i]!.pointer, width: o, out: out.pointer) }
            case .convolution:
                let aggregated = active.saved[i]!
                timed(true) { graph.adjacency.multiplyRows(rows, x: active.dropped[i]!.pointer, width: width, out: aggregated.pointer) }
                let target = active.preActivations[i] ?? out
                timed(false) { matmulForward(target.row(start), aggregated.row(start), w, rows: count, k: width, n: o) }
            case .initialResidualConvolution:
                let s = active.saved[i]!
                timed(true) { graph.adjacency.multiplyRows(rows, x: active.dropped[i]!.pointer, width: width, out: s.pointer) }
                let alpha = config.alpha, h0 = initialRows
                for row in rows {
                    let sr = s.row(row), hr = h0.row(row)
                    for c in 0..<width { sr[c] = (1 - alpha) * sr[c] + alpha * hr[c] }
                }
                let beta = config.beta(l)
                timed(false) { matmulForward(out.row(start), s.row(start), w, rows: count, k: width, n: o, scale: beta) }
                for row in rows {
                    let orow = out.row(row), sr = s.row(row)
                    for c in 0..<o { orow[c] += (1 - beta) * sr[c] }
                }
            case .inputLinear where sparseInput != nil:
                timed(false) { sparseInput!.multiply(active.droppedSparse, rows: rows, w: w, n: o, out: out.pointer) }
            case .inputLinear, .outputLinear:
                timed(false) { matmulForward(out.row(start), active.dropped[i]!.row(start), w, rows: count, k: width, n: o) }
            }
        }
        if let b = biasOffset[i] {
            let target = active.preActivations[i] ?? out
            parameters.withUnsafeBufferPointer { p in addBias(target.row(start), p.baseAddress! + b, rows: count, n: o) }
        }
        guard !isLast else { return }
        if let z = active.preActivations[i] {
            // Deep GCN: H_{l+1} = ReLU(Z) + H_l.
            let input = active.levels[i]!
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
        let logits = active.levels[layers.count]!, gradient = levelGradients[layers.count]!
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
        let logits = active.levels[layers.count]!
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
        let gradient = levelGradients[layers.count]!, width = gradient.width
        for (k, row) in rows.enumerated() {
            gradient.row(row).update(from: values + k * outputWidth, count: width)
            if outputWidth > width {
                let g0 = initialGradient!.row(row), incoming = values + k * outputWidth + width
                for c in 0..<width { g0[c] += incoming[c] }
            }
        }
    }

    /// Copies the gradient of the stage's input rows (and of H0 for GCNII) into `values`.
    public func copyInputGradient(rows: Range<Int>, into values: UnsafeMutablePointer<Float>) {
        let gradient = levelGradients[0]!, width = gradient.width
        for (k, row) in rows.enumerated() {
            (values + k * inputWidth).update(from: gradient.row(row), count: width)
            if inputWidth > width { (values + k * inputWidth + width).update(from: initialGradient!.row(row), count: width) }
        }
    }

    /// First backward step of layer `l` on `rows`: parameter gradients, and the aggregation's
    /// gradient scattered to neighbours. `chunkOf[j] > chunk` marks a neighbour whose forward
    /// value was historical: its part goes to the stale buffer.
    public func backward(_ l: Int, rows: Range<Int>, chunkOf: UnsafePointer<Int32>? = nil, chunk: Int32 = 0) {
        let i = l - layers.lowerBound
        let o = config.outputWidth(of: l), width = config.inputWidth(of: l)
        let start = rows.lowerBound, count = rows.count
        let out = active.levels[i + 1]!, gOut = levelGradients[i + 1]!
        let isLast = l == config.layers - 1
        // dZ (rows, o) in scratchA, starting at row 0.
        let dZ = scratchA.pointer
        let reluSource = active.preActivations[i] ?? out
        for (k, row) in rows.enumerated() {
            let d = dZ + k * o, g = gOut.row(row), a = reluSource.row(row)
            if config.kind(of: l) == .inputLinear, let g0 = initialGradient?.row(row) {
                for c in 0..<o { d[c] = a[c] > 0 ? g[c] + g0[c] : 0 }
            } else if isLast {
                d.update(from: g, count: o)
            } else {
                for c in 0..<o { d[c] = a[c] > 0 ? g[c] : 0 }
            }
        }
        let stale = chunkOf.map { (chunkOf: $0, chunk: chunk, into: deferredGradients[i]?.pointer ?? scratchB.pointer) }
        if stale != nil { holdsStaleGradients = true }
        gradientsAndWeights(l) { dW, w in
            if let b = biasOffset[i] { biasBackward(dW - weightOffset[i] + b, dZ, rows: count, n: o) }
            switch config.kind(of: l) {
            case .inputConvolution:
                let dA = aggregationGradients[i]!
                timed(true) { graph.adjacency.multiplyTransposedRowsAdding(rows, dy: dZ - start * o, width: o, dx: dA.pointer, stale: stale) }
            case .convolution:
                timed(false) { matmulBackwardWeight(dW, active.saved[i]!.row(start), dZ, rows: count, k: width, n: o) }
                let dAggregated = scratchB.pointer
                timed(false) { matmulBackwardInput(dAggregated, dZ, w, rows: count, k: width, n: o) }
                timed(true) { graph.adjacency.multiplyTransposedRowsAdding(rows, dy: dAggregated - start * width, width: width,
                                                             dx: aggregationGradients[i]!.pointer, stale: stale) }
            case .initialResidualConvolution:
                let beta = config.beta(l), alpha = config.alpha
                timed(false) { matmulBackwardWeight(dW, active.saved[i]!.row(start), dZ, rows: count, k: width, n: o, scale: beta) }
                let dS = scratchB.pointer
                timed(false) { matmulBackwardInput(dS, dZ, w, rows: count, k: width, n: o, scale: beta) }
                let g0 = initialGradient!
                for (k, row) in rows.enumerated() {
                    let s = dS + k * width, z = dZ + k * o, h = g0.row(row)
                    for c in 0..<width {
                        s[c] += (1 - beta) * z[c]
                        h[c] += alpha * s[c]
                        s[c] *= 1 - alpha
                    }
                }
                timed(true) { graph.adjacency.multiplyTransposedRowsAdding(rows, dy: dS - start * width, width: width,
                                                             dx: aggregationGradients[i]!.pointer, stale: stale) }
            case .inputLinear:
                if let sparse = sparseInput {
                    timed(false) { sparse.addTransposedProduct(active.droppedSparse, rows: rows, dOut: dZ - start * o, n: o, dW: dW) }
                } else {
                    timed(false) { matmulBackwardWeight(dW, active.dropped[i]!.row(start), dZ, rows: count, k: width, n: o) }
                }
            case .outputLinear:
                timed(false) { matmulBackwardWeight(dW, active.dropped[i]!.row(start), dZ, rows: count, k: width, n: o) }
                timed(false) { matmulBackwardInput(aggregationGradients[i]!.row(start), dZ, w, rows: count, k: width, n: o) }
            }
        }
    }

    /// The node-indexed gradient rows layer `l` scattered to: where halo gradients come from.
    public func aggregationGradientRows(_ l: Int) -> (pointer: UnsafeMutablePointer<Float>, width: Int)? {
        guard let buffer = aggregationGradients[l - layers.lowerBound] else { return nil }
        return (buffer.pointer, buffer.width)
    }

    /// Last backward step of layer `l` on `rows`, once every contribution to them has arrived:
    /// the gradient of H_l (through dropout and the residual), or of W for GCN layer 0.
    public func finish(_ l: Int, rows: Range<Int>) {
        let i = l - layers.lowerBound
        let width = config.inputWidth(of: l)
        switch config.kind(of: l) {
        case .inputConvolution:
            gradientsAndWeights(l) { dW, _ in
                if let sparse = sparseInput {
                    timed(false) { sparse.addTransposedProduct(active.droppedSparse, rows: rows, dOut: aggregationGradients[i]!.pointer,
                                                               n: config.outputWidth(of: l), dW: dW) }
                } else {
                    timed(false) { matmulBackwardWeight(dW, active.dropped[i]!.row(rows.lowerBound), aggregationGradients[i]!.row(rows.lowerBound),
                                                        rows: rows.count, k: width, n: config.outputWidth(of: l)) }
                }
            }
        case .inputLinear:
            break
        case .convolution, .initialResidualConvolution, .outputLinear:
            let gIn = levelGradients[i]!
            originalIDs.withUnsafeBufferPointer { ids in
                masks[i].backward(gIn.pointer, aggregationGradients[i]!.pointer, rows: rows, width: width, originalIDs: ids.baseAddress!)
            }
            if config.hasResidual(l) {
                let gOut = levelGradients[i + 1]!
                for row in rows {
                    let a = gIn.row(row), b = gOut.row(row)
                    for c in 0..<width { a[c] += b[c] }
                }
            }
        }
    }

    /// Runs backward over every layer of the stage on `rows`, with no exchange between steps.
    public func backward(rows: Range<Int>, chunkOf: UnsafePointer<Int32>? = nil, chunk: Int32 = 0) {
        for l in layers.reversed() {
            backward(l, rows: rows, chunkOf: chunkOf, chunk: chunk)
            finish(l, rows: rows)
        }
    }

    // MARK: - Internals

    /// H0 of GCNII: the output of layer 0, owned or received.
    private var initialRows: NodeBuffer { active.initial ?? active.levels[1 - layers.lowerBound]! }

    private func weights(_ l: Int, _ body: (UnsafePointer<Float>) -> Void) {
        parameters.withUnsafeBufferPointer { body($0.baseAddress! + weightOffset[l - layers.lowerBound]) }
    }

    private func gradientsAndWeights(_ l: Int, _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Void) {
        let offset = weightOffset[l - layers.lowerBound]
        parameters.withUnsafeBufferPointer { p in
            gradients.withUnsafeMutableBufferPointer { g in body(g.baseAddress! + offset, p.baseAddress! + offset) }
        }
    }
}
