import Models

/// Draws a table's lookups: from its generator when the spec has one, otherwise from a
/// distribution built to match its reuse bins (an approximation: rows of bin k are drawn with
/// weight 2^(k-1/2), the middle of the bin, and the number of distinct rows follows from the
/// pooling factor over the reference window).
public struct TableAccess: Sendable {
    private enum Source: Sendable {
        case generator(IndexSampler)
        /// Per bin: first permuted rank, rows, and the cumulative probability of drawing from it.
        case bins(IndexSampler, first: [Int], rows: [Int], cumulative: [Double])
    }

    public let table: TableSpec
    private let source: Source

    public init(_ table: TableSpec, seed: UInt64) {
        self.table = table
        var random = SplitMix64(seed: seed, stream: "table-access:" + table.name)
        if let distribution = table.distribution {
            source = .generator(IndexSampler(rows: table.rows, distribution: distribution, random: &random))
            return
        }
        let scatter = IndexSampler(rows: table.rows, distribution: .uniform, random: &random)
        let weights = (0..<ReuseBins.count).map { $0 == 0 ? 1.0 : Double(1 << $0) * 0.7071 }
        let fractions = table.bins.fractions
        let meanUses = zip(fractions, weights).reduce(0) { $0 + $1.0 * $1.1 }
        let lookups = Double(ReuseBins.windowSamples) * max(table.poolingFactor, 1e-9)
        let distinct = min(Double(table.rows), lookups / meanUses)
        var first: [Int] = [], rows: [Int] = [], mass: [Double] = []
        var next = 0
        for bin in 0..<ReuseBins.count {
            let count = fractions[bin] > 0 ? min(max(1, Int((fractions[bin] * distinct).rounded())), table.rows - next) : 0
            first.append(next)
            rows.append(count)
            mass.append(Double(count) * weights[bin])
            next += count
        }
        let total = mass.reduce(0, +)
        var running = 0.0
        source = .bins(scatter, first: first, rows: rows, cumulative: mass.map { running += $0 / total; return running })
    }

    /// One row.
    @inline(__always)
    public func next(_ random: inout SplitMix64) -> Int {
        switch source {
        case .generator(let sampler):
            return sampler.next(&random)
        case .bins(let scatter, let first, let rows, let cumulative):
            let u = random.nextDouble()
            var bin = 0
            while bin < cumulative.count - 1 && (u >= cumulative[bin] || rows[bin] == 0) { bin += 1 }
            return scatter.scatter(first[bin] + random.nextInt(below: max(rows[bin], 1)))
        }
    }

    /// Bag lengths with mean `poolingFactor`: its integer part, plus one with the probability
    /// of its fractional part.
    @inline(__always)
    public func bagLength(_ random: inout SplitMix64) -> Int {
        let whole = Int(table.poolingFactor)
        return whole + (random.nextDouble() < table.poolingFactor - Double(whole) ? 1 : 0)
    }

    /// A batch of `batchSize` samples over `tables` (one feature each, in order), reproducible
    /// from `seed`.
    public static func batch(_ tables: [TableSpec], batchSize: Int, seed: UInt64) -> BagBatch {
        let expected = tables.reduce(0.0) { $0 + $1.poolingFactor } * Double(batchSize)
        var batch = BagBatch(batchSize: batchSize, features: tables.count, reservingIndices: Int(expected * 1.05) + 16)
        for table in tables {
            let access = TableAccess(table, seed: seed)
            var random = SplitMix64(seed: seed, stream: "table-batch:" + table.name)
            for _ in 0..<batchSize {
                for _ in 0..<access.bagLength(&random) { batch.indices.append(Int32(access.next(&random))) }
                batch.endBag()
            }
        }
        return batch
    }
}
