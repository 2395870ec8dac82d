import Foundation

/// Draws k in 1...n with P(k) ∝ k^-s (s > 0) in constant time and memory, by rejection
/// inversion (Hörmann & Derflinger 1996): no table over n, so it serves tables of any size.
public struct ZipfSampler: Sendable {
    public let n: Int
    public let exponent: Double
    private let hIntegralX1: Double
    private let hIntegralN: Double
    private let squeeze: Double

    public init(n: Int, exponent: Double) {
        precondition(n >= 1 && exponent > 0, "Zipf needs n >= 1 and s > 0")
        self.n = n
        self.exponent = exponent
        hIntegralX1 = Self.hIntegral(1.5, exponent) - 1
        hIntegralN = Self.hIntegral(Double(n) + 0.5, exponent)
        squeeze = 2 - Self.hIntegralInverse(Self.hIntegral(2.5, exponent) - Self.h(2, exponent), exponent)
    }

    public func next(_ random: inout SplitMix64) -> Int {
        while true {
            let u = hIntegralN + random.nextDouble() * (hIntegralX1 - hIntegralN)
            let x = Self.hIntegralInverse(u, exponent)
            let k = min(max(Int(x + 0.5), 1), n)
            if Double(k) - x <= squeeze || u >= Self.hIntegral(Double(k) + 0.5, exponent) - Self.h(Double(k), exponent) {
                return k
            }
        }
    }

    /// h(x) = x^-s, the unnormalised density.
    private static func h(_ x: Double, _ s: Double) -> Double { exp(-s * log(x)) }

    /// H(x) = ∫ h = (x^(1-s) - 1) / (1 - s), continuous through s = 1 (log x).
    private static func hIntegral(_ x: Double, _ s: Double) -> Double {
        let logX = log(x)
        return expm1OverX((1 - s) * logX) * logX
    }

    private static func hIntegralInverse(_ x: Double, _ s: Double) -> Double {
        let t = max(x * (1 - s), -1)
        return exp(log1pOverX(t) * x)
    }

    /// (e^x - 1) / x, 1 at x = 0.
    private static func expm1OverX(_ x: Double) -> Double { abs(x) > 1e-8 ? expm1(x) / x : 1 + x / 2 * (1 + x / 3 * (1 + x / 4)) }

    /// log(1 + x) / x, 1 at x = 0.
    private static func log1pOverX(_ x: Double) -> Double { abs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - x / 4)) }
}
