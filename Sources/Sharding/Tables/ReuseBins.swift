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

    /// Groups of rows that, drawn with these mean uses over the reference window, give these
    /// bins: group k has `rows[k]` rows used `meanUses[k]` times on average (Poisson), and
    /// their expected bins, fitted by non-negative least squares, are the fractions. The rows
    /// used in a window follow from the pooling factor (lookups = window × pooling); a table too
    /// small for them keeps its share of each group.
    public func rowGroups(rows: Int, poolingFactor: Double) -> (rows: [Int], meanUses: [Double]) {
        // One group per bin, its mean uses inside the bin (bin 0: mostly used once); the last, open above, is the hot group.
        let meanUses: [Double] = (0..<Self.count).map { k -> Double in k == 0 ? 0.3 : k == 1 ? 2 : 0.75 * Double(1 << k) }
        // Column k: the expected bins of one row of group k.
        let columns = meanUses.map { mean -> [Double] in
            var column = [Double](repeating: 0, count: Self.count)
            Self.accumulate(mean: mean, rows: 1, into: &column)
            return column
        }
        let groups = meanUses.count
        var x = [Double](repeating: 0, count: groups), residual = fractions.map { -$0 }
        let norms = columns.map { $0.reduce(0) { $0 + $1 * $1 } }
        for _ in 0..<2000 {
            for k in 0..<groups where norms[k] > 0 {
                var dot = 0.0
                for j in 0..<Self.count { dot += columns[k][j] * residual[j] }
                let step = dot / norms[k]
                let updated = max(0, x[k] - step)
                for j in 0..<Self.count { residual[j] += (updated - x[k]) * columns[k][j] }
                x[k] = updated
            }
        }
        var lookupsPerDistinct = 0.0
        for k in 0..<groups { lookupsPerDistinct += x[k] * meanUses[k] }
        let distinct = Double(Self.windowSamples) * max(poolingFactor, 1e-9) / max(lookupsPerDistinct, 1e-12)
        let scale = min(distinct, Double(rows) / max(x.reduce(0, +), 1e-12))
        let rowsPerGroup: [Int] = x.map { value -> Int in value > 0 ? max(1, Int((value * scale).rounded())) : 0 }
        // Bin 16 is open above: the hot group's rows take whatever lookups the others leave.
        var uses = meanUses
        let hot = groups - 1
        var others = 0.0
        for k in 0..<hot { others += Double(rowsPerGroup[k]) * uses[k] }
        let left = Double(Self.windowSamples) * poolingFactor - others
        if rowsPerGroup[hot] > 0, left > Double(rowsPerGroup[hot]) * uses[hot] { uses[hot] = left / Double(rowsPerGroup[hot]) }
        return (rowsPerGroup, uses)
    }

    /// The distinct rows a batch of `batchSize` samples reads, expected from the bins: over the
    /// window, a row of bin k is used about c_k times (1 for bin 0, 3/4 of 2^k above), so the
    /// window reads lookups / Σ f_k c_k distinct rows (at most `rows`), and a batch, a fraction
    /// q of the window, reads each of them with probability 1 - e^(-q c_k).
    public func expectedRowsTouched(rows: Int, poolingFactor: Double, batchSize: Int) -> Double {
        let uses = (0..<Self.count).map { k in k == 0 ? 1 : 0.75 * Double(1 << k) }
        let usesPerDistinct = zip(fractions, uses).reduce(0) { $0 + $1.0 * $1.1 }
        let distinct = min(Double(rows), Double(Self.windowSamples) * poolingFactor / max(usesPerDistinct, 1e-12))
        let q = Double(batchSize) / Double(Self.windowSamples)
        return distinct * zip(fractions, uses).reduce(0) { $0 + $1.0 * -expm1(-q * $1.1) }
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
