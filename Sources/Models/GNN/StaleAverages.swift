/// Moving averages of a stage's historical values, per layer that aggregates (PipeGCN's
/// smoothing): before a pipelined epoch, the rows later chunks will read and the deferred
/// gradients are each replaced by average = momentum · average + (1 − momentum) · last epoch's.
/// The first values after no history, or after an exact epoch, start the averages as they are.
final class StaleAverages {
    /// The averages of one layer, each as large as the buffer it stands in for.
    struct Layer {
        let embeddings: NodeBuffer
        /// Allocated at the first deferred gradient, so dropped gradients cost no memory.
        var gradients: NodeBuffer?
        /// True while the averages hold nothing worth keeping: the next update copies.
        var embeddingsStartOver = true
        var gradientsStartOver = true
    }

    let momentum: Float
    /// Per owned layer; nil where the layer reads no neighbours.
    private var layers: [Layer?]

    /// Averages `rows` tall for the owned layers whose aggregation `widths` are given.
    init(momentum: Float, rows: Int, widths: [Int?]) {
        precondition(momentum > 0 && momentum < 1, "a moving average needs a momentum in (0, 1)")
        self.momentum = momentum
        layers = widths.map { width in width.map { Layer(embeddings: NodeBuffer(rows: rows, width: $0)) } }
    }

    /// Averages last epoch's rows of owned layer `i` in and leaves the average in their place.
    func smoothEmbeddings(_ i: Int, rows: UnsafeMutablePointer<Float>) {
        guard var layer = layers[i] else { return }
        let average = layer.embeddings
        update(average.pointer, from: rows, into: rows, count: average.rows * average.width, copy: layer.embeddingsStartOver)
        layer.embeddingsStartOver = false
        layers[i] = layer
    }

    /// Averages the stale gradients of owned layer `i` in and writes the average to `gradient`.
    func smoothGradients(_ i: Int, stale: NodeBuffer, into gradient: NodeBuffer) {
        guard var layer = layers[i] else { return }
        let average = layer.gradients ?? NodeBuffer(rows: stale.rows, width: stale.width)
        update(average.pointer, from: stale.pointer, into: gradient.pointer, count: stale.rows * stale.width, copy: layer.gradientsStartOver)
        layer.gradients = average
        layer.gradientsStartOver = false
        layers[i] = layer
    }

    /// After an exact epoch its values are the history: the averages restart from them.
    func startOver() {
        for i in layers.indices where layers[i] != nil {
            layers[i]!.embeddingsStartOver = true
            layers[i]!.gradientsStartOver = true
        }
    }

    /// average = m · average + (1 − m) · value (value itself when `copy`), written to both
    /// `average` and `out`; `out` may be `values`.
    private func update(_ average: UnsafeMutablePointer<Float>, from values: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                        count: Int, copy: Bool) {
        if copy {
            average.update(from: values, count: count)
            if UnsafePointer(out) != values { out.update(from: values, count: count) }
            return
        }
        let a = UnsafeMutableBufferPointer(start: average, count: count), o = UnsafeMutableBufferPointer(start: out, count: count)
        let v = UnsafeBufferPointer(start: values, count: count)
        let m = momentum, rest = 1 - momentum
        for k in 0..<count {
            let smoothed = m * a[k] + rest * v[k]
            a[k] = smoothed
            o[k] = smoothed
        }
    }
}
