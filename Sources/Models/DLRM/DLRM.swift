/// DLRM (Naumov et al. 2019): bottom MLP on dense features, pooled embedding lookups, feature
/// interaction, top MLP to a click logit, binary cross-entropy. The dense part works on pooled
/// embeddings handed to it, so a distributed step can supply them from other ranks; `trainStep`
/// runs the whole model on one rank.
public final class DLRM {
    public let config: DLRMConfig
    /// Bottom MLP parameters, then top MLP parameters.
    public let parameters: ParameterBuffer
    public let bottom: MLP
    public let top: MLP
    public let embeddings: EmbeddingBagCollection
    public var denseOptimizer: DenseOptimizer
    /// Time in the MLPs (forward and backward, with their sgemm calls) and in the interaction.
    public var mlpTimer = KernelTimer()
    public var interactionTimer = KernelTimer()

    private var capacity = 0
    private var pooled: UnsafeMutablePointer<Float>?
    private var pooledGradient: UnsafeMutablePointer<Float>?
    /// The interaction output (the top MLP's input) of the last forward, and its gradient.
    private var interactionOutput: UnsafeMutablePointer<Float>?
    private var interactionGradient: UnsafeMutablePointer<Float>?
    private var bottomGradient: UnsafeMutablePointer<Float>?
    private var logitGradient: UnsafeMutablePointer<Float>?

    /// A model with freshly initialised parameters: MLPs from `seed`'s "mlp" stream, embedding
    /// rows from its "embedding" stream (the same values under any sharding). `embeddings`
    /// overrides the single-rank collection of every table whole.
    public init(config: DLRMConfig, embeddingOptimizer: EmbeddingOptimizer = .sgd, denseOptimizer: DenseOptimizer.Kind = .sgd,
                seed: UInt64, embeddings: EmbeddingBagCollection? = nil) {
        self.config = config
        let bottomCount = MLP.parameterCount(sizes: config.bottomMLP)
        parameters = ParameterBuffer(count: bottomCount + MLP.parameterCount(sizes: config.topSizes))
        bottom = MLP(sizes: config.bottomMLP, reluOnLast: true, parameters: parameters, offset: 0)
        top = MLP(sizes: config.topSizes, reluOnLast: false, parameters: parameters, offset: bottomCount)
        var random = SplitMix64(seed: seed, stream: "mlp")
        bottom.initialize(&random)
        top.initialize(&random)
        self.embeddings = embeddings ?? EmbeddingBagCollection(tables: config.tables, optimizer: embeddingOptimizer, seed: seed)
        self.denseOptimizer = DenseOptimizer(denseOptimizer, parameterCount: parameters.count)
    }

    deinit { release() }

    /// Width of the pooled embeddings of one sample: Σ dims.
    public var pooledWidth: Int { config.tables.reduce(0) { $0 + $1.dim } }

    /// The last forward's logits, one per sample.
    public var logits: UnsafePointer<Float> { UnsafePointer(top.output) }

    /// Logits of dense (rows, denseFeatures) with pooled embeddings (rows, pooledWidth).
    public func forward(dense: UnsafePointer<Float>, pooled: UnsafePointer<Float>, rows: Int) {
        forwardBottom(dense: dense, rows: rows)
        forwardTop(pooled: pooled, rows: rows)
    }

    /// The bottom MLP alone: it needs no embeddings, so a distributed step runs it while the
    /// pooled vectors are still on their way (`progress` runs between its layers).
    public func forwardBottom(dense: UnsafePointer<Float>, rows: Int, progress: () -> Void = {}) {
        reserve(rows)
        mlpTimer.measure { bottom.forward(dense, rows: rows, progress: progress) }
    }

    /// Interaction and top MLP, after `forwardBottom` on the same rows, with pooled
    /// embeddings (rows, pooledWidth).
    public func forwardTop(pooled: UnsafePointer<Float>, rows: Int) {
        forwardTop(pooled: denseLayout(pooled), rows: rows)
    }

    /// Interaction and top MLP, after `forwardBottom` on the same rows, with pooled vectors
    /// wherever they are.
    public func forwardTop(pooled: PooledVectors, rows: Int) {
        guard let input = interactionOutput else { return }
        interactionTimer.measure {
            interactionForward(config.interaction, out: input, bottom: bottom.output, pooled: pooled, rows: rows,
                               d: config.embeddingDim, outWidth: config.interactionWidth)
        }
        mlpTimer.measure { top.forward(input, rows: rows) }
    }

    /// The dense layout of pooled vectors (rows, pooledWidth) at `base`.
    public func denseLayout(_ base: UnsafePointer<Float>) -> PooledVectors {
        PooledVectors(dense: UnsafeMutablePointer(mutating: base), widths: config.tables.map(\.dim))
    }

    /// Backward of the last forward against `labels`: accumulates MLP gradients, writes the
    /// gradient of the pooled embeddings (rows, pooledWidth) and returns Σ loss / divisor.
    @discardableResult
    public func backward(dense: UnsafePointer<Float>, pooled: UnsafePointer<Float>, labels: UnsafePointer<Float>, rows: Int,
                         divisor: Int, pooledGradient: UnsafeMutablePointer<Float>) -> Double {
        let loss = backwardTop(pooled: denseLayout(pooled), labels: labels, rows: rows, divisor: divisor,
                               pooledGradient: denseLayout(pooledGradient))
        backwardBottom(dense: dense, rows: rows)
        return loss
    }

    /// The first part of `backward`: loss, top MLP and interaction. It writes the pooled
    /// vectors' gradients where `pooledGradient` lays them out, so a distributed step can send
    /// them on while `backwardBottom` runs.
    public func backwardTop(pooled: PooledVectors, labels: UnsafePointer<Float>, rows: Int, divisor: Int,
                            pooledGradient: PooledVectors) -> Double {
        guard let interaction = interactionGradient, let topInput = interactionOutput, let bottomGradient, let logitGradient else { return 0 }
        let loss = BinaryCrossEntropy.forwardBackward(logits: logits, labels: labels, count: rows, divisor: Float(divisor),
                                                      dLogits: logitGradient)
        mlpTimer.measure { top.backward(topInput, outputGradient: logitGradient, rows: rows, inputGradient: interaction) }
        interactionTimer.measure {
            interactionBackward(config.interaction, outGradient: interaction, bottom: bottom.output, pooled: pooled,
                                bottomGradient: bottomGradient, pooledGradient: pooledGradient, rows: rows,
                                d: config.embeddingDim, outWidth: config.interactionWidth)
        }
        return loss
    }

    /// The rest of `backward`: the bottom MLP's gradients, after `backwardTop` on the same rows
    /// (`progress` runs between its layers).
    public func backwardBottom(dense: UnsafePointer<Float>, rows: Int, progress: () -> Void = {}) {
        guard let bottomGradient else { return }
        mlpTimer.measure { bottom.backward(dense, outputGradient: bottomGradient, rows: rows, inputGradient: nil, progress: progress) }
    }

    /// One training step on one rank: forward, backward, dense update, and the embeddings'
    /// backward fused with their update. Returns the batch's mean loss.
    @discardableResult
    public func trainStep(_ batch: ClickBatch, learningRate: Float) -> Double {
        let loss = denseGradients(batch)
        denseOptimizer.update(parameters, learningRate: learningRate)
        if let pooledGradient { embeddings.backwardAndUpdate(batch.bags, outputGradient: pooledGradient, learningRate: learningRate) }
        return loss
    }

    /// Forward and backward on one rank: MLP gradients in `parameters`, the embeddings' sparse
    /// gradients in their shards, nothing updated. Returns the batch's mean loss.
    @discardableResult
    public func computeGradients(_ batch: ClickBatch) -> Double {
        let loss = denseGradients(batch)
        if let pooledGradient { embeddings.backward(batch.bags, outputGradient: pooledGradient) }
        return loss
    }

    /// Embedding forward, then forward and backward of the dense part: MLP gradients in
    /// `parameters`, the pooled embeddings' gradient in `pooledGradient`.
    private func denseGradients(_ batch: ClickBatch) -> Double {
        let rows = batch.count
        reserve(rows)
        guard let pooled, let pooledGradient else { return 0 }
        embeddings.forward(batch.bags, into: pooled)
        parameters.zeroGradients()
        return batch.dense.withUnsafeBufferPointer { dense in
            batch.labels.withUnsafeBufferPointer { labels in
                forward(dense: dense.baseAddress!, pooled: pooled, rows: rows)
                return backward(dense: dense.baseAddress!, pooled: pooled, labels: labels.baseAddress!, rows: rows,
                                divisor: rows, pooledGradient: pooledGradient)
            }
        }
    }

    /// Logits of every sample of `batch`, without training.
    public func predict(_ batch: ClickBatch) -> [Float] {
        reserve(batch.count)
        guard let pooled else { return [] }
        embeddings.forward(batch.bags, into: pooled)
        batch.dense.withUnsafeBufferPointer { forward(dense: $0.baseAddress!, pooled: pooled, rows: batch.count) }
        return Array(UnsafeBufferPointer(start: logits, count: batch.count))
    }

    private func reserve(_ rows: Int) {
        guard rows > capacity else { return }
        release()
        capacity = rows
        func buffer(_ width: Int) -> UnsafeMutablePointer<Float> {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * width, 1))
            b.initialize(repeating: 0, count: max(rows * width, 1))
            return b
        }
        pooled = buffer(pooledWidth)
        pooledGradient = buffer(pooledWidth)
        interactionGradient = buffer(config.interactionWidth)
        interactionOutput = buffer(config.interactionWidth)
        bottomGradient = buffer(config.embeddingDim)
        logitGradient = buffer(1)
    }

    private func release() {
        for buffer in [pooled, pooledGradient, interactionOutput, interactionGradient, bottomGradient, logitGradient] {
            buffer?.deallocate()
        }
    }
}
