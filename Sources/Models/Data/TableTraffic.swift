/// How one table is looked up: how many rows a sample's bag holds and which rows they are.
/// Synthetic clicks and the cost oracle both draw their bags from it, so a table trains on the
/// traffic it was planned for.
public struct TableTraffic: Hashable, Sendable {
    /// Bag sizes around the pooling factor p.
    public enum BagSizes: String, Codable, CaseIterable, Sendable {
        /// ⌊p⌋, or ⌊p⌋ + 1 with probability p − ⌊p⌋: the mean is p, the spread at most one.
        case fixed
        /// Uniform in 0...2n with n drawn as for `fixed`: the mean is p, empty bags included.
        case random
    }

    /// Which rows a bag holds.
    public enum Rows: Hashable, Sendable {
        /// Drawn from a distribution over the rows.
        case distribution(IndexDistribution)
        /// Drawn from groups of rows: group k holds `rows[k]` rows, each drawn with weight
        /// `weights[k]` (rows scattered over the table by a fixed permutation). Reuse bins
        /// become groups this way (see `ReuseBins.rowGroups`).
        case groups(rows: [Int], weights: [Double])
    }

    public var rows: Int
    /// Mean lookups per sample.
    public var poolingFactor: Double
    public var bagSizes: BagSizes
    public var source: Rows

    public init(rows: Int, poolingFactor: Double, bagSizes: BagSizes = .fixed, source: Rows) {
        self.rows = rows
        self.poolingFactor = poolingFactor
        self.bagSizes = bagSizes
        self.source = source
    }
}

/// Draws the bags of one table's traffic. The permutation that scatters hot rows over the table
/// comes from the generator given at creation; each draw then takes the caller's generator, so
/// a sample's bags depend only on that sample's stream.
public struct TrafficSampler: Sendable {
    private enum Source: Sendable {
        case generator(IndexSampler)
        /// Per group: first permuted rank, rows, and the cumulative probability of drawing from it.
        case groups(IndexSampler, first: [Int], rows: [Int], cumulative: [Double])
    }

    public let traffic: TableTraffic
    private let source: Source
    private let wholeBag: Int
    private let extraProbability: Double

    public init(_ traffic: TableTraffic, random: inout SplitMix64) {
        self.traffic = traffic
        wholeBag = Int(traffic.poolingFactor)
        extraProbability = traffic.poolingFactor - Double(wholeBag)
        switch traffic.source {
        case .distribution(let distribution):
            source = .generator(IndexSampler(rows: traffic.rows, distribution: distribution, random: &random))
        case .groups(let groupRows, let weights):
            let scatter = IndexSampler(rows: traffic.rows, distribution: .uniform, random: &random)
            var first: [Int] = [], rows: [Int] = [], mass: [Double] = []
            var next = 0
            for (count, weight) in zip(groupRows, weights) {
                let count = min(max(count, 0), traffic.rows - next)
                first.append(next)
                rows.append(count)
                mass.append(Double(count) * max(weight, 0))
                next += count
            }
            let total = max(mass.reduce(0, +), 1e-300)
            var running = 0.0
            source = .groups(scatter, first: first, rows: rows, cumulative: mass.map { running += $0 / total; return running })
        }
    }

    /// One row.
    @inline(__always)
    public func next(_ random: inout SplitMix64) -> Int {
        switch source {
        case .generator(let sampler):
            return sampler.next(&random)
        case .groups(let scatter, let first, let rows, let cumulative):
            let u = random.nextDouble()
            var bin = 0
            while bin < cumulative.count - 1 && (u >= cumulative[bin] || rows[bin] == 0) { bin += 1 }
            return scatter.scatter(first[bin] + random.nextInt(below: max(rows[bin], 1)))
        }
    }

    /// One bag's length, with mean `poolingFactor`.
    @inline(__always)
    public func bagLength(_ random: inout SplitMix64) -> Int {
        let fixed = wholeBag + (extraProbability > 0 && random.nextDouble() < extraProbability ? 1 : 0)
        switch traffic.bagSizes {
        case .fixed: return fixed
        case .random: return random.nextInt(below: 2 * fixed + 1)
        }
    }

    /// Appends one bag to `batch` and ends it.
    @inline(__always)
    public func appendBag(to batch: inout BagBatch, _ random: inout SplitMix64) {
        for _ in 0..<bagLength(&random) { batch.indices.append(Int32(truncatingIfNeeded: next(&random))) }
        batch.endBag()
    }
}
