// The kernels of each layer kind, forward beside backward. Rows are node-indexed unless said
// otherwise; dZ holds the rows being processed from row 0. Backward kernels add into parameter
// gradients, which `beginEpoch` clears.

extension GNNStage {
    /// Where a backward scatter puts the part for a neighbour whose forward value was historical
    /// (`chunkOf[j] > chunk`).
    typealias StaleRows = (chunkOf: UnsafePointer<Int32>, chunk: Int32, into: UnsafeMutablePointer<Float>)

    // MARK: - Dropout

    /// Layer 0's input: dropped = dropout(X) for `rows` of owned layer `i`.
    func dropFeatures(_ input: DroppedInput, layer i: Int, rows: Range<Int>) {
        originalIDs.withUnsafeBufferPointer { ids in
            switch input {
            case .sparse(let features, let values):
                features.drop(&values[pass].values, rows: rows, mask: masks[i], originalIDs: ids.baseAddress!)
            case .dense(let dropped):
                graph.features.withUnsafeBufferPointer { x in
                    masks[i].apply(dropped[pass].pointer, x.baseAddress!, rows: rows, width: graph.featureCount, originalIDs: ids.baseAddress!)
                }
            }
        }
    }

    /// dropped = dropout(H) for `rows` of owned layer `i` (H, dropped (N, width)); training
    /// records which elements it kept.
    func dropHidden(_ dropped: DroppedHidden, _ input: NodeBuffer, layer i: Int, rows: Range<Int>) {
        originalIDs.withUnsafeBufferPointer { ids in
            masks[i].apply(dropped[pass].pointer, input.pointer, rows: rows, width: input.width, originalIDs: ids.baseAddress!,
                           recording: pass == .training ? dropped.kept : nil)
        }
    }

    /// dH = dropout's backward of dDropped, plus dH_{l+1} where owned layer `i` adds its input.
    func dropHiddenBackward(_ dInput: NodeBuffer, _ dDropped: NodeBuffer, kept: KeptElements, layer i: Int, rows: Range<Int>) {
        let residual = config.hasResidual(layers.lowerBound + i) ? UnsafePointer(states[i].outputGradient.pointer) : nil
        masks[i].backward(dInput.pointer, dDropped.pointer, rows: rows, width: dInput.width, kept: kept, adding: residual)
    }

    // MARK: - Input convolution (GCN layer 0): H1 = Â (dropout(X) W) + b

    /// product (N, o) = dropout(X) W for `rows`: transform first, as X is wide.
    func inputConvolutionTransform(_ product: NodeBuffer, _ input: DroppedInput, _ w: UnsafePointer<Float>, rows: Range<Int>) {
        linearForward(product, input, w, rows: rows)
    }

    /// out (N, o) = Â product for `rows`.
    func inputConvolutionForward(_ out: NodeBuffer, _ product: NodeBuffer, rows: Range<Int>) {
        timed(true) { graph.adjacency.multiplyRows(rows, x: product.pointer, width: out.width, out: out.pointer) }
    }

    /// dProduct (N, o) += Âᵀ dZ (rows, o).
    func inputConvolutionBackward(_ dProduct: NodeBuffer, _ dZ: UnsafePointer<Float>, rows: Range<Int>, stale: StaleRows?) {
        let o = dProduct.width
        timed(true) {
            graph.adjacency.multiplyTransposedRowsAdding(rows, dy: dZ - rows.lowerBound * o, width: o, dx: dProduct.pointer, stale: stale)
        }
    }

    /// dW += dropout(X)ᵀ dProduct over `rows`, once every partition's part of dProduct has arrived.
    func inputConvolutionBackwardWeight(_ dW: UnsafeMutablePointer<Float>, _ input: DroppedInput, _ dProduct: NodeBuffer, rows: Range<Int>) {
        addTransposedProduct(dW, input, dOut: dProduct.pointer, rows: rows, n: dProduct.width)
    }

    // MARK: - Convolution (GCN): Z = (Â dropout(H)) W + b

    /// aggregated (N, width) = Â dropped; z (N, o) = aggregated W, for `rows`.
    func convolutionForward(_ z: NodeBuffer, _ aggregated: NodeBuffer, _ dropped: NodeBuffer, _ w: UnsafePointer<Float>, rows: Range<Int>) {
        let width = aggregated.width, o = z.width, start = rows.lowerBound
        timed(true) { graph.adjacency.multiplyRows(rows, x: dropped.pointer, width: width, out: aggregated.pointer) }
        timed(false) { matmulForward(z.row(start), aggregated.row(start), w, rows: rows.count, k: width, n: o) }
    }

    /// dW += aggregatedᵀ dZ; dDropped (N, width) += Âᵀ (dZ Wᵀ).
    func convolutionBackward(_ dDropped: NodeBuffer, _ dW: UnsafeMutablePointer<Float>, _ dZ: UnsafePointer<Float>,
                             _ aggregated: NodeBuffer, _ w: UnsafePointer<Float>, rows: Range<Int>, layer l: Int, stale: StaleRows?) {
        let width = aggregated.width, o = config.outputWidth(of: l), start = rows.lowerBound, count = rows.count
        timed(false) { matmulBackwardWeight(dW, aggregated.row(start), dZ, rows: count, k: width, n: o) }
        let dAggregated = scratch.pointer
        timed(false) { matmulBackwardInput(dAggregated, dZ, w, rows: count, k: width, n: o) }
        timed(true) {
            graph.adjacency.multiplyTransposedRowsAdding(rows, dy: dAggregated - start * width, width: width, dx: dDropped.pointer, stale: stale)
        }
    }

    // MARK: - Initial-residual convolution (GCNII): S = (1-α) Â dropout(H) + α H0, H' = S ((1-β) I + β W)

    /// mixed (N, width) = S; out (N, o) = β S W + (1-β) S, for `rows`.
    func initialResidualForward(_ out: NodeBuffer, _ mixed: NodeBuffer, _ dropped: NodeBuffer, _ h0: NodeBuffer,
                                _ w: UnsafePointer<Float>, rows: Range<Int>, layer l: Int) {
        let width = mixed.width, o = out.width, start = rows.lowerBound
        timed(true) { graph.adjacency.multiplyRows(rows, x: dropped.pointer, width: width, out: mixed.pointer) }
        let alpha = config.alpha, beta = config.beta(l)
        for row in rows {
            let sr = mixed.row(row), hr = h0.row(row)
            for c in 0..<width { sr[c] = (1 - alpha) * sr[c] + alpha * hr[c] }
        }
        timed(false) { matmulForward(out.row(start), mixed.row(start), w, rows: rows.count, k: width, n: o, scale: beta) }
        for row in rows {
            let orow = out.row(row), sr = mixed.row(row)
            for c in 0..<o { orow[c] += (1 - beta) * sr[c] }
        }
    }

    /// dW += β Sᵀ dZ; dS = β dZ Wᵀ + (1-β) dZ; dH0 += α dS; dDropped (N, width) += Âᵀ (1-α) dS.
    func initialResidualBackward(_ dDropped: NodeBuffer, _ dH0: NodeBuffer, _ dW: UnsafeMutablePointer<Float>, _ dZ: UnsafePointer<Float>,
                                 _ mixed: NodeBuffer, _ w: UnsafePointer<Float>, rows: Range<Int>, layer l: Int, stale: StaleRows?) {
        let width = mixed.width, o = config.outputWidth(of: l), start = rows.lowerBound, count = rows.count
        let beta = config.beta(l), alpha = config.alpha
        timed(false) { matmulBackwardWeight(dW, mixed.row(start), dZ, rows: count, k: width, n: o, scale: beta) }
        let dS = scratch.pointer
        timed(false) { matmulBackwardInput(dS, dZ, w, rows: count, k: width, n: o, scale: beta) }
        for (k, row) in rows.enumerated() {
            let s = dS + k * width, z = dZ + k * o, h = dH0.row(row)
            for c in 0..<width {
                s[c] += (1 - beta) * z[c]
                h[c] += alpha * s[c]
                s[c] *= 1 - alpha
            }
        }
        timed(true) {
            graph.adjacency.multiplyTransposedRowsAdding(rows, dy: dS - start * width, width: width, dx: dDropped.pointer, stale: stale)
        }
    }

    // MARK: - Linear (GCNII input and output layers): Z = dropout(H) W + b

    /// out (N, o) = dropped W for `rows` (dropped dense, or the non-zeros of sparse features).
    func linearForward(_ out: NodeBuffer, _ input: DroppedInput, _ w: UnsafePointer<Float>, rows: Range<Int>) {
        let o = out.width, start = rows.lowerBound
        switch input {
        case .sparse(let features, let values):
            timed(false) { features.multiply(values[pass].values, rows: rows, w: w, n: o, out: out.pointer) }
        case .dense(let dropped):
            let buffer = dropped[pass]
            timed(false) { matmulForward(out.row(start), buffer.row(start), w, rows: rows.count, k: buffer.width, n: o) }
        }
    }

    /// dW += droppedᵀ dZ (dZ (rows, o)).
    func linearBackwardWeight(_ dW: UnsafeMutablePointer<Float>, _ input: DroppedInput, _ dZ: UnsafePointer<Float>, rows: Range<Int>, layer l: Int) {
        let o = config.outputWidth(of: l)
        addTransposedProduct(dW, input, dOut: dZ - rows.lowerBound * o, rows: rows, n: o)
    }

    /// dDropped (N, width) = dZ Wᵀ for `rows`.
    func linearBackwardInput(_ dDropped: NodeBuffer, _ dZ: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows: Range<Int>, layer l: Int) {
        let o = config.outputWidth(of: l)
        timed(false) { matmulBackwardInput(dDropped.row(rows.lowerBound), dZ, w, rows: rows.count, k: dDropped.width, n: o) }
    }

    /// dW (k, n) += dropped[rows]ᵀ dOut[rows], dOut node-indexed (N, n).
    private func addTransposedProduct(_ dW: UnsafeMutablePointer<Float>, _ input: DroppedInput, dOut: UnsafePointer<Float>,
                                      rows: Range<Int>, n: Int) {
        switch input {
        case .sparse(let features, let values):
            timed(false) { features.addTransposedProduct(values[pass].values, rows: rows, dOut: dOut, n: n, dW: dW) }
        case .dense(let dropped):
            let buffer = dropped[pass], start = rows.lowerBound
            timed(false) { matmulBackwardWeight(dW, buffer.row(start), dOut + start * n, rows: rows.count, k: buffer.width, n: n) }
        }
    }
}
