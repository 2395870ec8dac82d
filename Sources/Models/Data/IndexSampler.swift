/// Draws rows of one table from an `IndexDistribution`: uniform, or Zipf over a fixed random
/// affine permutation of the rows (a·k + b mod rows), so hot rows are scattered over the table
/// as hashed ids are, not packed at its start.
public struct IndexSampler: Sendable {
    public let rows: Int
    private let zipf: ZipfSampler?
    private let a: Int
    private let b: Int

    /// The permutation is drawn from `random` (two draws or more) whatever the distribution, so
    /// a sequence of samplers consumes the generator the same way for every distribution.
    public init(rows: Int, distribution: IndexDistribution, random: inout SplitMix64) {
        self.rows = rows
        var a = 1 + random.nextInt(below: rows)
        while gcd(a, rows) != 1 { a = 1 + random.nextInt(below: rows) }
        self.a = a % rows == 0 ? 1 : a
        b = random.nextInt(below: rows)
        if case .zipf(let s) = distribution { zipf = ZipfSampler(n: rows, exponent: s) } else { zipf = nil }
    }

    /// The row the k-th most popular rank (0-based) maps to.
    @inline(__always)
    public func scatter(_ k: Int) -> Int { (k * a + b) % rows }

    @inline(__always)
    public func next(_ random: inout SplitMix64) -> Int {
        guard let zipf else { return random.nextInt(below: rows) }
        return scatter(zipf.next(&random) - 1)
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
