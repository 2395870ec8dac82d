/// Updates of dense (MLP) parameters: plain SGD, or element-wise Adagrad as `torch.optim.Adagrad`.
public struct DenseOptimizer {
    public enum Kind: String, Codable, CaseIterable, Sendable { case sgd, adagrad }

    public let kind: Kind
    public var epsilon: Float = 1e-10
    /// Adagrad's running sums of squared gradients.
    public private(set) var accumulators: [Float]

    public init(_ kind: Kind, parameterCount: Int) {
        self.kind = kind
        accumulators = kind == .adagrad ? [Float](repeating: 0, count: parameterCount) : []
    }

    /// Puts back saved accumulators, as many as this optimizer keeps.
    public mutating func restore(accumulators saved: [Float]) {
        precondition(saved.count == accumulators.count, "\(saved.count) saved accumulators for \(accumulators.count)")
        accumulators = saved
    }

    /// One update of `parameters` from their gradients.
    public mutating func update(_ parameters: ParameterBuffer, learningRate: Float) {
        let p = parameters.values, g = parameters.gradients
        switch kind {
        case .sgd:
            for i in 0..<parameters.count { p[i] -= learningRate * g[i] }
        case .adagrad:
            let epsilon = self.epsilon
            accumulators.withUnsafeMutableBufferPointer { state in
                for i in 0..<parameters.count {
                    state[i] += g[i] * g[i]
                    p[i] -= learningRate * g[i] / (state[i].squareRoot() + epsilon)
                }
            }
        }
    }
}
