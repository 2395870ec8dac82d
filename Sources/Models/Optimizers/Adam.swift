import Foundation

/// Adam (Kingma & Ba) with PyTorch's L2 weight decay (added to the gradient, not decoupled),
/// over one flat parameter buffer; each parameter can have its own decay rate.
public struct Adam: Sendable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public private(set) var step = 0
    private var m: [Float]
    private var v: [Float]

    public init(parameterCount: Int, learningRate: Float) {
        self.learningRate = learningRate
        m = [Float](repeating: 0, count: parameterCount)
        v = [Float](repeating: 0, count: parameterCount)
    }

    /// One update of `parameters` from `gradients`, with L2 decay `decays[i]` on parameter i
    /// (none without `decays`).
    public mutating func update(_ parameters: inout [Float], gradients: [Float], decays: [Float]? = nil) {
        precondition(parameters.count == m.count && gradients.count == m.count && (decays?.count ?? m.count) == m.count)
        step += 1
        let correction1 = 1 - Float(pow(Double(beta1), Double(step)))
        let correction2 = 1 - Float(pow(Double(beta2), Double(step)))
        let stepSize = learningRate / correction1
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        func apply(_ rates: UnsafeBufferPointer<Float>?) {
            parameters.withUnsafeMutableBufferPointer { p in
                m.withUnsafeMutableBufferPointer { m in
                    v.withUnsafeMutableBufferPointer { v in
                        gradients.withUnsafeBufferPointer { gradients in
                            for i in p.indices {
                                var g = gradients[i]
                                if let rates { g += rates[i] * p[i] }
                                m[i] = b1 * m[i] + (1 - b1) * g
                                v[i] = b2 * v[i] + (1 - b2) * g * g
                                p[i] -= stepSize * m[i] / ((v[i] / correction2).squareRoot() + eps)
                            }
                        }
                    }
                }
            }
        }
        if let decays { decays.withUnsafeBufferPointer { apply($0) } } else { apply(nil) }
    }
}
