import Foundation
import Models

/// How often a table's distinct rows are used within a reference window of lookups: bin 0 holds
/// the fraction of distinct rows used once, bin k (1...15) those used (2^(k-1), 2^k] times, and
/// bin 16 those used more than 2^15 times. The 17 fractions sum to 1. NeuroShard and DreamShard
/// read them as the table's access features.
public struct ReuseBins: Hashable, Sendable, Codable {
    public static let count = 17
    /// Samples in the reference window the bins describe (lookups = samples x pooling factor).
    public static let windowSamples = 65_536

    public let fractions: [Double]

    /// Bins given as fractions; they must be 17 non-negative numbers summing to 1 (within 1e-3).
    public init(fractions: [Double]) throws(PlanError) {
        guard fractions.count == Self.count else {
            throw PlanError("reuse bins: expected \(Self.count) fractions, found \(fractions.count)")
        }
        guard fractions.allSatisfy({ $0 >= 0 && $0.isFinite }) else { throw PlanError("reuse bins: fractions must be 0 or more") }
        let sum = fractions.reduce(0, +)
        guard abs(sum - 1) <= 1e-3 else { throw PlanError("reuse bins sum to \(String(format: "%.4f", sum)), not 1") }
        // Renormalised only when visibly off, so that bins survive a JSON round trip bit for bit.
        self.fractions = abs(sum - 1) < 1e-9 ? fractions : fractions.map { $0 / sum }
    }

    public init(from decoder: Decoder) throws { try self.init(fractions: try decoder.singleValueContainer().decode([Double].self)) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fractions)
    }

    /// The bin of a row used `count` (>= 1) times.
    public static func bin(ofCount count: Int) -> Int {
        count <= 1 ? 0 : min(Self.count - 1, Int.bitWidth - (count - 1).leadingZeroBitCount)
    }

    /// The bins `distribution` gives a table of `rows` rows over the reference window, as
    /// expectations: a row drawn with probability p is used Poisson(lookups · p) times. Rows
    /// of near-equal probability (within 1%) are evaluated together, so this is fast for any size.
    public static func expected(rows: Int, poolingFactor: Double, distribution: IndexDistribution) -> ReuseBins {
        let lookups = Double(windowSamples) * poolingFactor
        var used = [Double](repeating: 0, count: Self.count)
        switch distribution {
        case .uniform:
            accumulate(mean: lookups / Double(rows), rows: Double(rows), into: &used)
        case .zipf(let s):
            let norm = generalisedHarmonic(rows, s)
            var k = 1
            while k <= rows {
                let end = min(rows, max(k, Int(Double(k) * 1.01)))
                let mid = (Double(k) + Double(end)) / 2
                accumulate(mean: lookups * pow(mid, -s) / norm, rows: Double(end - k + 1), into: &used)
                k = end + 1
            }
        }
        let total = used.reduce(0, +)
        guard total > 0 else { return try! ReuseBins(fractions: [1] + [Double](repeating: 0, count: Self.count - 1)) }
        return try! ReuseBins(fractions: used.map { $0 / total })
    }

    /// Adds `rows` times the probability that a Poisson(mean) count falls in each bin.
    private static func accumulate(mean: Double, rows: Double, into used: inout [Double]) {
        guard mean > 0 else { return }
        if mean > 64 {
            // Normal approximation: the bins are wide here, so only the bin edges near the mean matter.
            let sd = mean.squareRoot()
            var previous = 0.0
            for bin in 0..<Self.count {
                let upper = bin == Self.count - 1 ? Double.infinity : Double(1 << bin) + 0.5
                let cdf = upper.isInfinite ? 1 : 0.5 * erfc(-(upper - mean) / (sd * 2.0.squareRoot()))
                used[bin] += rows * max(0, cdf - previous)
                previous = cdf
            }
            return
        }
        var pmf = exp(-mean)  // P(0)
        let last = Int(mean * 4 + 40)
        for count in 1...last {
            pmf *= mean / Double(count)
            used[bin(ofCount: count)] += rows * pmf
        }
    }

    /// Σ_{k=1..n} k^-s, summed exactly for the first 10,000 terms and by the integral beyond.
    private static func generalisedHarmonic(_ n: Int, _ s: Double) -> Double {
        let exact = min(n, 10_000)
        var sum = 0.0
        for k in stride(from: exact, through: 1, by: -1) { sum += pow(Double(k), -s) }
        guard n > exact else { return sum }
        let a = Double(exact) + 0.5, b = Double(n) + 0.5
        return sum + (abs(s - 1) < 1e-9 ? log(b / a) : (pow(b, 1 - s) - pow(a, 1 - s)) / (1 - s))
    }
}
