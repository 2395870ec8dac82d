import Foundation

/// How a synthetic table's rows are drawn.
public enum IndexDistribution: Hashable, Codable, Sendable, CustomStringConvertible {
    case uniform
    /// Zipf with exponent s over a fixed random permutation of the rows (hot rows scattered).
    case zipf(Double)

    /// `uniform` or `zipf:S`.
    public init(parsing text: String) throws(ConfigError) {
        if text == "uniform" { self = .uniform; return }
        if text.hasPrefix("zipf:"), let s = Double(text.dropFirst(5)), s > 0, s.isFinite { self = .zipf(s); return }
        throw ConfigError("index distribution '\(text)': expected uniform or zipf:S with S > 0")
    }

    public var description: String {
        switch self {
        case .uniform: "uniform"
        case .zipf(let s): "zipf:\(s)"
        }
    }
}

/// Synthetic clicks whose labels a fixed random "teacher" DLRM of the same shape draws, so the
/// task is learnable: dense features U(0, 1); per table, bags drawn from its `TableTraffic`
/// (sizes around its pooling factor, rows from its distribution or reuse bins); label ~
/// Bernoulli(σ(scale · standardised teacher logit + logit(0.25))), a base click rate near 25%.
/// The teacher's rows are U(-range, range), wider than a fresh model's, so that embeddings
/// carry signal; at range 1 their pairwise dot products dominate and SGD from a fresh model
/// barely moves off the saddle at zero. Its tables hold at most `teacherRows` rows (row r of a
/// larger table reads the teacher's row r mod `teacherRows`), so every rank can hold the
/// teacher of a job whose tables only fit spread over all ranks.
/// Sample i depends only on (seed, i), so any rank can draw any slice of any batch.
public final class SyntheticClicks {
    public let config: DLRMConfig
    public let traffic: [TableTraffic]
    public let seed: UInt64
    /// The most rows a teacher table holds.
    public static let teacherRows = 16384
    private let teacher: DLRM
    /// Standardisation of the teacher's logits, calibrated on 4,096 samples of their own stream.
    private var teacherShift: Float = 0
    private var teacherScale: Float = 1
    private let samplers: [TrafficSampler]

    /// Clicks over `config`'s tables, table t looked up as `traffic[t]` says.
    public init(config: DLRMConfig, traffic: [TableTraffic], seed: UInt64, teacherScale: Float = 3,
                teacherEmbeddingRange: Float = 0.1) throws(ConfigError) {
        guard traffic.count == config.tables.count else {
            throw ConfigError("traffic of \(traffic.count) tables for a model of \(config.tables.count)")
        }
        for (table, t) in zip(config.tables, traffic) {
            guard t.rows == table.rows else { throw ConfigError("table \(table.name): traffic over \(t.rows) rows, the table has \(table.rows)") }
            guard t.poolingFactor >= 0, t.poolingFactor.isFinite else {
                throw ConfigError("table \(table.name): pooling factor must be 0 or more, found \(t.poolingFactor)")
            }
        }
        self.config = config
        self.traffic = traffic
        self.seed = seed
        var random = SplitMix64(seed: seed, stream: "synthetic-tables")
        samplers = traffic.map { TrafficSampler($0, random: &random) }
        var teacherConfig = config
        teacherConfig.tables = config.tables.map { EmbeddingTableSpec(name: $0.name, rows: min($0.rows, Self.teacherRows), dim: $0.dim) }
        teacher = DLRM(config: teacherConfig, seed: seed ^ 0x7465_6163_6865_72)  // "teacher"
        for shard in teacher.embeddings.shards {
            let spread = teacherEmbeddingRange * Float(Double(shard.rows).squareRoot())
            for i in 0..<shard.rows * shard.width { shard.weights[i] *= spread }
        }
        let calibration = Self.teacherLogits(teacher, inputs(samples: 0..<4096, stream: "calibration"))
        let mean = calibration.reduce(0, +) / Float(calibration.count)
        let variance = calibration.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(calibration.count)
        self.teacherShift = mean
        self.teacherScale = teacherScale / max(variance.squareRoot(), 1e-6)
    }

    /// Clicks with one traffic for every table: `pooling[t]` indices per bag (or uniform in
    /// 0...2·pooling with `randomPooling`, empty bags included) from `distribution`.
    public convenience init(config: DLRMConfig, pooling: [Int], randomPooling: Bool = false, distribution: IndexDistribution = .uniform,
                            seed: UInt64, teacherScale: Float = 3, teacherEmbeddingRange: Float = 0.1) throws(ConfigError) {
        guard pooling.count == config.tables.count else {
            throw ConfigError("\(pooling.count) pooling factors for \(config.tables.count) tables")
        }
        guard pooling.allSatisfy({ $0 >= 0 }) else { throw ConfigError("pooling factors must be 0 or more") }
        let traffic = zip(config.tables, pooling).map { table, pooling in
            TableTraffic(rows: table.rows, poolingFactor: Double(pooling), bagSizes: randomPooling ? .random : .fixed,
                         source: .distribution(distribution))
        }
        try self.init(config: config, traffic: traffic, seed: seed, teacherScale: teacherScale, teacherEmbeddingRange: teacherEmbeddingRange)
    }

    /// Training samples `range` (global sample numbers: batch k of size B is k·B ..< (k+1)·B).
    public func batch(samples range: Range<Int>) -> ClickBatch { labelled(samples: range, stream: "train") }

    /// Held-out samples, drawn from their own stream.
    public func heldOut(count: Int) -> ClickBatch { labelled(samples: 0..<count, stream: "held-out") }

    private func labelled(samples range: Range<Int>, stream: String) -> ClickBatch {
        var batch = inputs(samples: range, stream: stream)
        let logits = Self.teacherLogits(teacher, batch)
        for (i, sample) in range.enumerated() {
            var random = SplitMix64(seed: seed, stream: stream + "-label", index: UInt64(sample))
            let z = (logits[i] - teacherShift) * teacherScale - 1.0986123  // logit(0.25)
            batch.labels[i] = random.nextFloat() < BinaryCrossEntropy.sigmoid(z) ? 1 : 0
        }
        return batch
    }

    /// Features of samples `range` with labels left 0.
    private func inputs(samples range: Range<Int>, stream: String) -> ClickBatch {
        var dense = [Float](repeating: 0, count: range.count * config.denseFeatures)
        var sampleRandom = range.map { SplitMix64(seed: seed, stream: stream, index: UInt64($0)) }
        for i in 0..<range.count {
            for j in 0..<config.denseFeatures { dense[i * config.denseFeatures + j] = sampleRandom[i].nextFloat() }
        }
        let expected = traffic.reduce(0.0) { $0 + $1.poolingFactor * ($1.bagSizes == .random ? 2 : 1) }
        var bags = BagBatch(batchSize: range.count, features: samplers.count, reservingIndices: Int(Double(range.count) * expected) + 16)
        for sampler in samplers {
            for i in 0..<range.count { sampler.appendBag(to: &bags, &sampleRandom[i]) }
        }
        return ClickBatch(dense: dense, bags: bags, labels: [Float](repeating: 0, count: range.count))
    }

    /// The teacher's logits of `batch`, its rows folded into the teacher's tables.
    private static func teacherLogits(_ teacher: DLRM, _ batch: ClickBatch) -> [Float] {
        guard batch.bags.indices.contains(where: { $0 >= Int32(teacherRows) }) else { return teacher.predict(batch) }
        var folded = batch
        for j in folded.bags.indices.indices { folded.bags.indices[j] %= Int32(teacherRows) }
        return teacher.predict(folded)
    }
}
