/// How closely a pipelined epoch's weight gradient follows the exact one, at the same weights
/// and dropout masks: their cosine, and the pipelined gradient's norm over the exact one's.
public struct GradientAgreement: Codable, Sendable, Hashable {
    public var cosine: Double
    public var normRatio: Double

    /// The agreement of `pipelined` with `exact` (equal lengths); 0 and 0 where `exact` is all zero.
    public init(exact: ArraySlice<Float>, pipelined: ArraySlice<Float>) {
        precondition(exact.count == pipelined.count, "gradients of different sizes")
        var dot = 0.0, exactSquared = 0.0, pipelinedSquared = 0.0
        for (e, p) in zip(exact, pipelined) {
            dot += Double(e) * Double(p)
            exactSquared += Double(e) * Double(e)
            pipelinedSquared += Double(p) * Double(p)
        }
        let norms = (exactSquared * pipelinedSquared).squareRoot()
        cosine = norms > 0 ? dot / norms : 0
        normRatio = exactSquared > 0 ? (pipelinedSquared / exactSquared).squareRoot() : 0
    }
}

/// What a pipelined epoch would do to the gradient at one epoch of exact single-rank training.
/// A pipelined epoch differs from the exact one in two ways: each chunk reads its neighbours in
/// later chunks as last epoch left them, and the gradient through those rows does not reach
/// their chunks this epoch (it is dropped, the pipeline's default). `pipelined` measures both
/// together; `droppedOnly` gives every chunk this epoch's rows, so that only the dropped
/// gradients differ. Deep models lose most of their gradient this way: a gradient path through
/// many aggregations rarely avoids every historical neighbour.
public struct PipelinedGradientCheck: Codable, Sendable {
    /// The epoch, from 1.
    public var epoch: Int
    public var exactLoss: Double
    /// The training loss of the pipelined forward, which reads last epoch's rows.
    public var pipelinedLoss: Double
    /// Over all weights, then per layer: the pipelined epoch as it runs.
    public var pipelined: GradientAgreement
    public var pipelinedPerLayer: [GradientAgreement]
    /// Over all weights, then per layer: this epoch's rows in place of last epoch's.
    public var droppedOnly: GradientAgreement
    public var droppedOnlyPerLayer: [GradientAgreement]
}

extension GNNTrainer {
    /// A pipelined epoch's training pass over the layout's chunks in order, reading the rows the
    /// training pass before it left: the loss and the gradients it would step with.
    func pipelinedGradient(_ epoch: Int) -> (loss: Double, gradients: [Float]) {
        let chunks = layout.chunkRanges[0]
        stage.beginEpoch(epoch, training: true, pipelined: true)
        var loss = 0.0
        for rows in chunks {
            stage.forward(rows: rows)
            loss += stage.loss(rows: rows, trainCount: trainCount).loss
        }
        layout.chunkOf.withUnsafeBufferPointer { chunkOf in
            for (chunk, rows) in chunks.enumerated().reversed() {
                stage.backward(rows: rows, chunkOf: chunkOf.baseAddress, chunk: Int32(chunk))
            }
        }
        return (loss, stage.gradients)
    }

    /// Called with the exact gradients of epoch `epoch` in the stage and `pipelined` measured
    /// before them: measures the pipelined pass again on this epoch's rows, records the check,
    /// and leaves the exact gradients in place for the step.
    func checkGradient(_ epoch: Int, exactLoss: Double, pipelined: (loss: Double, gradients: [Float])) {
        let exact = stage.gradients
        let droppedOnly = pipelinedGradient(epoch).gradients
        stage.withGradients { $0 = exact }
        let layers = (0..<stage.layers.count).map { stage.parameterRange(ofLayer: $0) }
        let perLayer = { (gradients: [Float]) in layers.map { GradientAgreement(exact: exact[$0], pipelined: gradients[$0]) } }
        lastGradientCheck = PipelinedGradientCheck(
            epoch: epoch + 1, exactLoss: exactLoss, pipelinedLoss: pipelined.loss,
            pipelined: GradientAgreement(exact: exact[...], pipelined: pipelined.gradients[...]),
            pipelinedPerLayer: perLayer(pipelined.gradients),
            droppedOnly: GradientAgreement(exact: exact[...], pipelined: droppedOnly[...]),
            droppedOnlyPerLayer: perLayer(droppedOnly))
    }
}
