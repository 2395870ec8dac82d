import Foundation

/// Binary cross-entropy on click logits (the sigmoid folded in, for stability).
public enum BinaryCrossEntropy {
    /// Σ loss / divisor over `count` logits; writes dLogits = (σ(z) - y) / divisor. The divisor
    /// is the global batch size, so ranks holding slices of a batch add up to its mean.
    public static func forwardBackward(logits: UnsafePointer<Float>, labels: UnsafePointer<Float>, count: Int,
                                       divisor: Float, dLogits: UnsafeMutablePointer<Float>) -> Double {
        var total = 0.0
        for i in 0..<count {
            total += Double(loss(logit: logits[i], label: labels[i]))
            dLogits[i] = (sigmoid(logits[i]) - labels[i]) / divisor
        }
        return total / Double(divisor)
    }

    /// max(z, 0) - z·y + log(1 + e^-|z|).
    @inline(__always)
    public static func loss(logit z: Float, label y: Float) -> Float {
        max(z, 0) - z * y + log1p(exp(-abs(z)))
    }

    @inline(__always)
    public static func sigmoid(_ z: Float) -> Float { 1 / (1 + exp(-z)) }
}
