import Foundation
import Models

/// NeuroShard's compute cost model. A per-table MLP embeds 25 features of each piece; a linear
/// layer turns each embedding into the piece's own forward and backward log-milliseconds,
/// whose exponentials add up over a shard set; a head MLP on the set's mean embedding, its
/// piece count and how its hot rows fit the last-level cache predicts a log factor for how
/// the pieces interact. NeuroShard's paper puts the head on the summed embeddings alone; the
/// additive part here keeps predictions sound for sets larger and costlier than any in
/// training (the planner's ranks on 8-rank tasks hold more tables than any collected set),
/// since the head only scales it. Times are fit as logarithms, so that small and large sets
/// count alike, at the batch size the model was trained on; other batch sizes scale linearly.
/// Communication is priced by the calibrated all-to-all model.
///
/// The model is an ensemble of such networks, alike in shape, started from other seeds and fed
/// the records in other orders (a deep ensemble). It predicts their mean; for the search it can
/// add a multiple of their spread, so that plans resting on sets the networks disagree about
/// (the sets the search would otherwise exploit the errors of) look as costly as they may be.
public final class NeuroShardCostModel {
    public static let formatVersion = 4
    /// Features per piece: width, rows, pooling, bytes, the 17 reuse bins, then what a CPU pays
    /// for: the bytes a batch reads after reuse, the table's full width, and the sharding type
    /// (cut by columns, cut by rows).
    public static let featureCount = 4 + ReuseBins.count + 4

    /// A shard as the model sees it: `table` is the rows it holds as a table of their own
    /// (`TableSpec.block` with every column: their count and their share of the lookups), of
    /// which it holds `columns` columns; `rowCut` says whether those rows are a part of a table.
    public struct Piece: Sendable {
        public var table: TableSpec
        public var columns: Int
        public var rowCut: Bool

        public init(table: TableSpec, columns: Int, rowCut: Bool = false) {
            self.table = table
            self.columns = columns
            self.rowCut = rowCut
        }

        /// `shard` of `table`.
        public init(_ table: TableSpec, shard: EmbeddingShardSpec) {
            let rows = shard.rowRange(of: table.embedding)
            self.init(table: rows.count == table.rows ? table : table.block(EmbeddingShardSpec(table: shard.table, columns: 0..<table.dim, rows: rows)),
                      columns: shard.columns.count, rowCut: rows.count < table.rows)
        }

        /// Bytes of the piece's rows a batch of `batchSize` samples reads, each once.
        func bytesTouched(batchSize: Int) -> Double {
            table.bins.expectedRowsTouched(rows: table.rows, poolingFactor: table.poolingFactor, batchSize: batchSize)
                * Double(columns * MemoryLayout<Float>.size)
        }
    }

    /// One measured shard set: tables with the columns each contributes and, where a piece
    /// holds part of its table's rows, which; and the oracle's times.
    public struct Record: Codable, Sendable {
        public var tables: [TableSpec]
        public var columns: [Int]
        /// Per table, the rows its piece holds (nil: every row); nil in sets of whole tables.
        public var rows: [Range<Int>?]?
        public var forward: Double
        public var backward: Double

        public init(tables: [TableSpec], columns: [Int], rows: [Range<Int>?]? = nil, forward: Double, backward: Double) {
            self.tables = tables
            self.columns = columns
            self.rows = rows
            self.forward = forward
            self.backward = backward
        }

        /// The set's shards, each of the table at its index.
        public var shards: [EmbeddingShardSpec] {
            tables.indices.map { EmbeddingShardSpec(table: $0, columns: 0..<columns[$0], rows: rows?[$0]) }
        }

        /// The set's pieces.
        public var pieces: [Piece] { zip(tables, shards).map { Piece($0, shard: $1) } }
    }

    /// What `costs collect` writes.
    public struct Dataset: Codable, Sendable {
        public var batchSize: Int
        /// The last-level cache of the machine that measured the records (nil: unknown, taken
        /// as this machine's).
        public var lastLevelCacheBytes: Int?
        /// The machine that measured the records (nil: unknown).
        public var hardware: HardwareFingerprint?
        /// The speed reference's milliseconds the times are scaled to (nil: unscaled or unknown).
        public var referenceMilliseconds: Double?
        public var records: [Record]

        public init(batchSize: Int, lastLevelCacheBytes: Int? = MachineCaches.lastLevelBytes, hardware: HardwareFingerprint? = nil,
                    referenceMilliseconds: Double? = nil, records: [Record]) {
            self.batchSize = batchSize
            self.lastLevelCacheBytes = lastLevelCacheBytes
            self.hardware = hardware
            self.referenceMilliseconds = referenceMilliseconds
            self.records = records
        }

        /// The records with their times scaled to a speed reference of `milliseconds` (as
        /// they are when it has none).
        public func scaled(toReference milliseconds: Double?) -> [Record] {
            guard let milliseconds, let referenceMilliseconds else { return records }
            let scale = milliseconds / referenceMilliseconds
            return records.map { record in
                var scaled = record
                scaled.forward *= scale
                scaled.backward *= scale
                return scaled
            }
        }

        public static func read(_ path: String) throws(PlanError) -> Dataset {
            do { return try JSONDecoder().decode(Dataset.self, from: Data(contentsOf: URL(fileURLWithPath: path))) }
            catch { throw PlanError("\(path): not a cost data set (\(JSONProblem.describe(error)))") }
        }
    }

    /// One network of the ensemble: the per-table MLP, the cost layer and the head, in one buffer.
    final class Network {
        let parameters: ParameterBuffer
        let tableMLP: MLP
        /// Embedding to the table's own forward and backward log-milliseconds.
        let costLayer: MLP
        /// Mean embedding and scaled log table count to a log factor on each additive sum.
        let headMLP: MLP

        init(tableSizes: [Int], headSizes: [Int], seed: UInt64) {
            let costSizes = [tableSizes.last!, 2]
            parameters = ParameterBuffer(count: MLP.parameterCount(sizes: tableSizes) + MLP.parameterCount(sizes: costSizes)
                                            + MLP.parameterCount(sizes: headSizes))
            tableMLP = MLP(sizes: tableSizes, reluOnLast: true, parameters: parameters, offset: 0)
            costLayer = MLP(sizes: costSizes, reluOnLast: false, parameters: parameters, offset: tableMLP.parameterCount)
            headMLP = MLP(sizes: headSizes, reluOnLast: false, parameters: parameters, offset: tableMLP.parameterCount + costLayer.parameterCount)
            var random = SplitMix64(seed: seed, stream: "neuroshard-cost-model")
            tableMLP.initialize(&random)
            costLayer.initialize(&random)
            headMLP.initialize(&random)
        }
    }

    let tableSizes: [Int]
    let headSizes: [Int]
    public let batchSize: Int
    /// The last-level cache that a set's hot rows are compared with: this machine's, or in
    /// training, that of the machine that measured the records.
    public var lastLevelCacheBytes = MachineCaches.lastLevelBytes
    /// The machine its training records were measured on (nil: a model from before
    /// fingerprints, an unknown machine).
    public var hardware: HardwareFingerprint?
    let networks: [Network]
    /// Standard deviations of the networks' disagreement that the search adds to a set's
    /// predicted time (`head(_:batch:penalized:)`); reports always read the plain mean.
    public var uncertaintyWeight: Double

    var embeddingWidth: Int { tableSizes.last! }
    /// Floats one network adds to a piece's vector: its embedding and its own two times.
    private var memberStride: Int { embeddingWidth + 2 }
    /// Where a piece's vector holds the count (1) and the bytes a batch reads, after every
    /// network's part.
    private var countIndex: Int { networks.count * memberStride }
    /// Table counts are fed to the head as log(count) / log(16): about 1 for the largest
    /// collected sets.
    static let countScale = Float(log(16.0))
    /// A set's bytes read per batch over the last-level cache, fed as log2(ratio) / 8.
    static let cacheScale = Float(8)

    /// A model of `members` networks, the m-th started from `seed + m`.
    public init(batchSize: Int, hidden: Int = 64, embedding: Int = 32, members: Int = 1, uncertaintyWeight: Double = 0, seed: UInt64) {
        self.batchSize = batchSize
        self.uncertaintyWeight = uncertaintyWeight
        tableSizes = [Self.featureCount, hidden, embedding]
        headSizes = [embedding + 2, hidden, 2]
        networks = (0..<max(members, 1)).map { [tableSizes, headSizes] m in
            Network(tableSizes: tableSizes, headSizes: headSizes, seed: seed &+ UInt64(m))
        }
    }

    /// Networks in the ensemble.
    public var members: Int { networks.count }

    /// The normalised features of `piece` at `batchSize` samples. Shards are stored compact,
    /// so the row stride a lookup walks is the piece's own width; the full width tells the model
    /// how much of the table (and of its lookups' index traffic) the piece shares.
    public static func features(_ piece: Piece, batchSize: Int) -> [Float] {
        features(piece, bytesTouched: piece.bytesTouched(batchSize: batchSize))
    }

    /// The features of `piece`, of which a batch reads `bytesTouched` bytes.
    static func features(_ piece: Piece, bytesTouched: Double) -> [Float] {
        let table = piece.table, columns = piece.columns
        let bytes = Double(table.rows * columns * MemoryLayout<Float>.size)
        return [Float(Double(columns) / 128), Float(log10(Double(table.rows)) / 6), Float(log10(1 + table.poolingFactor) / log10(201.0)),
                Float(log10(bytes) / 10)] + table.bins.fractions.map(Float.init)
            + [Float(log10(max(bytesTouched, 1)) / 10), Float(Double(table.dim) / 128),
               columns < table.dim ? 1 : 0, piece.rowCut ? 1 : 0]
    }

    // MARK: - Prediction

    /// What each piece adds to a shard set: per network, its embedding and its own forward and
    /// backward milliseconds; then a count of 1 and the bytes a batch reads of it. A shard set
    /// is the sum of its pieces' vectors, so a planner can try a piece on every rank without
    /// running the table networks again.
    public func embed(_ pieces: [Piece]) -> [[Float]] {
        guard !pieces.isEmpty else { return [] }
        let touched = pieces.map { $0.bytesTouched(batchSize: batchSize) }
        let features = pieces.indices.flatMap { Self.features(pieces[$0], bytesTouched: touched[$0]) }
        var vectors = [[Float]](repeating: [], count: pieces.count)
        let width = embeddingWidth
        for network in networks {
            let embedded = network.tableMLP.forward(features, rows: pieces.count)
            let own = network.costLayer.forward(embedded, rows: pieces.count)
            for i in pieces.indices { vectors[i] += embedded[i * width ..< (i + 1) * width] + [exp(own[2 * i]), exp(own[2 * i + 1])] }
        }
        for i in pieces.indices { vectors[i] += [1, Float(touched[i])] }
        return vectors
    }

    /// Forward and backward milliseconds at `batch` samples of sets whose summed piece vectors
    /// (from `embed`) are `sums`: the networks' mean, scaled when `penalized` so that the
    /// total is the mean plus `uncertaintyWeight` standard deviations of the networks' totals.
    /// An empty set costs nothing.
    public func head(_ sums: [[Float]], batch: Int, penalized: Bool = false) -> [(forward: Double, backward: Double)] {
        guard !sums.isEmpty else { return [] }
        let scale = Double(batch) / Double(batchSize), width = embeddingWidth, stride = memberStride
        // times[i][m]: set i's forward and backward by network m.
        var times = [[(forward: Double, backward: Double)]](repeating: [], count: sums.count)
        for (m, network) in networks.enumerated() {
            let start = m * stride
            let factors = network.headMLP.forward(sums.flatMap { headRow($0[start ..< start + width], count: $0[countIndex], touched: $0[countIndex + 1]) },
                                                  rows: sums.count)
            for i in sums.indices {
                let own = start + width
                times[i].append((Double(sums[i][own]) * exp(Double(factors[2 * i])) * scale,
                                 Double(sums[i][own + 1]) * exp(Double(factors[2 * i + 1])) * scale))
            }
        }
        let members = Double(networks.count)
        return sums.indices.map { i in
            guard sums[i][countIndex] >= 0.5 else { return (0, 0) }
            let forward = times[i].reduce(0) { $0 + $1.forward } / members, backward = times[i].reduce(0) { $0 + $1.backward } / members
            guard penalized, uncertaintyWeight != 0, networks.count > 1 else { return (forward, backward) }
            let mean = forward + backward
            let variance = times[i].reduce(0) { $0 + ($1.forward + $1.backward - mean) * ($1.forward + $1.backward - mean) } / members
            let factor = mean > 0 ? max(mean + uncertaintyWeight * variance.squareRoot(), 0) / mean : 1
            return (forward * factor, backward * factor)
        }
    }

    /// A head's input for a set of `count` pieces whose embeddings sum to `embeddings` and of
    /// which a batch reads `touched` bytes: the mean embedding, the scaled log count, and the
    /// scaled log ratio of those bytes to the last-level cache.
    private func headRow(_ embeddings: ArraySlice<Float>, count: Float, touched: Float) -> [Float] {
        let count = max(count, 1)
        return embeddings.map { $0 / count }
            + [log(count) / Self.countScale, log2(max(touched, 1) / Float(max(lastLevelCacheBytes, 1))) / Self.cacheScale]
    }

    /// Predicted forward and backward milliseconds of one shard set (penalized as `head`'s).
    public func predict(_ pieces: [Piece], batch: Int, penalized: Bool = false) -> (forward: Double, backward: Double) {
        guard !pieces.isEmpty else { return (0, 0) }
        return head([Self.sum(embed(pieces))], batch: batch, penalized: penalized)[0]
    }

    static func sum(_ rows: [[Float]]) -> [Float] {
        var total = [Float](repeating: 0, count: rows.first?.count ?? 0)
        for row in rows { for j in row.indices { total[j] += row[j] } }
        return total
    }

    // MARK: - Training

    /// Median absolute percentage error of forward + backward on `records`.
    public func medianError(_ records: [Record]) -> Double { CostCalibration.errors(of: self, on: records).all }

    /// Fits every network to `records` (measured on a machine whose last-level cache is
    /// `lastLevelCacheBytes`) with Adam on the squared error of the log times, in mini-batches
    /// of `setsPerBatch` sets, the rate decaying linearly to zero; network m shuffles from
    /// `seed + m`. Returns the training loss of each epoch, averaged over the networks.
    @discardableResult
    public func train(_ records: [Record], epochs: Int, learningRate: Float = 3e-3, setsPerBatch: Int = 32, seed: UInt64) -> [Double] {
        let pieces = records.map(\.pieces)
        let touchedByPiece = pieces.map { $0.map { $0.bytesTouched(batchSize: batchSize) } }
        let data = TrainingData(
            features: pieces.indices.map { r in pieces[r].indices.flatMap { Self.features(pieces[r][$0], bytesTouched: touchedByPiece[r][$0]) } },
            pieceCounts: pieces.map(\.count),
            touched: touchedByPiece.map { $0.reduce(Float(0)) { $0 + Float($1) } },
            targets: records.map { [log(Float($0.forward)), log(Float($0.backward))] })
        var losses = [Double](repeating: 0, count: epochs)
        for (m, network) in networks.enumerated() {
            let memberLosses = train(network, on: data, epochs: epochs, learningRate: learningRate, setsPerBatch: setsPerBatch, seed: seed &+ UInt64(m))
            for epoch in 0..<epochs { losses[epoch] += memberLosses[epoch] / Double(networks.count) }
        }
        return losses
    }

    /// Records as every network trains on them: each set's piece features (one row per
    /// piece), its piece count, the bytes a batch reads of it, and its log forward and backward
    /// times.
    private struct TrainingData {
        var features: [[Float]]
        var pieceCounts: [Int]
        var touched: [Float]
        var targets: [[Float]]
    }

    private func train(_ network: Network, on data: TrainingData, epochs: Int, learningRate: Float, setsPerBatch: Int, seed: UInt64) -> [Double] {
        var adam = Adam(parameterCount: network.parameters.count, learningRate: learningRate)
        var random = SplitMix64(seed: seed, stream: "neuroshard-train")
        let width = embeddingWidth
        var losses: [Double] = []
        network.parameters.zeroGradients()
        for epoch in 0..<epochs {
            // A linear decay to zero: a constant rate leaves the last epochs' noise (a bias of
            // several percent across all sets) in the weights.
            adam.learningRate = learningRate * (1 - Float(epoch) / Float(epochs))
            var total = 0.0
            let order = data.features.indices.shuffled(using: &random)
            for start in stride(from: 0, to: order.count, by: setsPerBatch) {
                let batch = Array(order[start..<min(start + setsPerBatch, order.count)])
                var groups: [Range<Int>] = [], rows = 0
                for r in batch {
                    groups.append(rows..<rows + data.pieceCounts[r])
                    rows += data.pieceCounts[r]
                }
                let input = batch.flatMap { data.features[$0] }
                let embedded = network.tableMLP.forward(input, rows: rows)
                let own = network.costLayer.forward(embedded, rows: rows)
                var headInput: [Float] = []
                for (k, group) in groups.enumerated() {
                    var sum = [Float](repeating: 0, count: width)
                    for i in group { for j in 0..<width { sum[j] += embedded[i * width + j] } }
                    headInput += headRow(sum[...], count: Float(group.count), touched: data.touched[batch[k]])
                }
                let factors = network.headMLP.forward(headInput, rows: batch.count)
                // log time = logsumexp of the tables' own log times + the head's log factor.
                var factorGradient = [Float](repeating: 0, count: 2 * batch.count)
                var ownGradient = [Float](repeating: 0, count: 2 * rows)
                for (k, group) in groups.enumerated() {
                    let targets = data.targets[batch[k]]
                    for o in 0..<2 {
                        let top = group.map { own[2 * $0 + o] }.max()!
                        let partition = group.reduce(Float(0)) { $0 + exp(own[2 * $1 + o] - top) }
                        let error = top + log(partition) + factors[2 * k + o] - targets[o]
                        total += Double(error * error)
                        let g = 2 * error / Float(batch.count)
                        factorGradient[2 * k + o] = g
                        for i in group { ownGradient[2 * i + o] = g * exp(own[2 * i + o] - top) / partition }
                    }
                }
                let headGradient = network.headMLP.backward(headInput, outputGradient: factorGradient, rows: batch.count)
                var embeddedGradient = network.costLayer.backward(embedded, outputGradient: ownGradient, rows: rows)
                for (k, group) in groups.enumerated() {
                    let perTable = 1 / Float(group.count)
                    for i in group { for j in 0..<width { embeddedGradient[i * width + j] += headGradient[k * (width + 2) + j] * perTable } }
                }
                network.tableMLP.backward(input, outputGradient: embeddedGradient, rows: rows, wantInputGradient: false)
                network.parameters.step(&adam)
            }
            losses.append(total / Double(2 * data.features.count))
        }
        return losses
    }

    // MARK: - Files

    private struct File: Codable {
        var formatVersion: Int
        var featureCount: Int
        var batchSize: Int
        var tableSizes: [Int]
        var headSizes: [Int]
        var members: Int
        var uncertaintyWeight: Double
        /// Every network's parameters, one after the other.
        var parameters: [Float]
        var heldOutMedianError: Double?
        var unseenTablesMedianError: Double?
        var hardware: HardwareFingerprint?
    }

    /// Writes the model with the errors measured for it: on held-out sets of its training
    /// tables, and on sets of tables it never saw.
    public func write(to path: String, heldOutMedianError: Double?, unseenTablesMedianError: Double?) throws(PlanError) {
        let file = File(formatVersion: Self.formatVersion, featureCount: Self.featureCount, batchSize: batchSize,
                        tableSizes: tableSizes, headSizes: headSizes, members: members, uncertaintyWeight: uncertaintyWeight,
                        parameters: networks.flatMap(\.parameters.valueArray),
                        heldOutMedianError: heldOutMedianError, unseenTablesMedianError: unseenTablesMedianError, hardware: hardware)
        do { try JSONFile.write(file, to: path) } catch { throw PlanError(error.description) }
    }

    public static func read(_ path: String) throws(PlanError) -> NeuroShardCostModel {
        let file = try VersionedFile.read(File.self, from: path, kind: "cost model", formatVersion: formatVersion)
        guard file.featureCount == featureCount else {
            throw PlanError("\(path): the cost model was trained with other features (\(file.featureCount), this build uses \(featureCount))")
        }
        guard file.tableSizes.count == 3, file.tableSizes.first == featureCount, file.headSizes.count == 3, file.headSizes.last == 2,
              file.tableSizes[2] + 2 == file.headSizes[0], (file.tableSizes + file.headSizes).allSatisfy({ (1...4096).contains($0) }),
              (1...(1 << 30)).contains(file.batchSize), (1...64).contains(file.members) else {
            throw PlanError("\(path): layers \(file.tableSizes) and \(file.headSizes) (batch \(file.batchSize), \(file.members) networks) are not "
                            + "a cost model this build reads (\(featureCount)-H-E and (E+2)-H-2, sizes up to 4096, 1-64 networks)")
        }
        guard file.uncertaintyWeight.isFinite, file.uncertaintyWeight >= 0 else {
            throw PlanError("\(path): the uncertainty weight \(file.uncertaintyWeight) is not a number of standard deviations, 0 or more")
        }
        let model = NeuroShardCostModel(batchSize: file.batchSize, hidden: file.tableSizes[1], embedding: file.tableSizes[2],
                                        members: file.members, uncertaintyWeight: file.uncertaintyWeight, seed: 0)
        let perNetwork = model.networks[0].parameters.count
        guard model.headSizes == file.headSizes, file.parameters.count == file.members * perNetwork else {
            throw PlanError("\(path): \(file.parameters.count) parameters for \(file.members) networks of layers \(file.tableSizes) and \(file.headSizes)")
        }
        guard file.parameters.allSatisfy(\.isFinite) else { throw PlanError("\(path): the cost model has parameters that are not finite numbers") }
        file.parameters.withUnsafeBufferPointer { all in
            for (m, network) in model.networks.enumerated() { network.parameters.values.update(from: all.baseAddress! + m * perNetwork, count: perNetwork) }
        }
        model.hardware = file.hardware
        return model
    }

    /// The model trained on this machine that ships with MPITrain.
    public static func shipped() throws(PlanError) -> NeuroShardCostModel {
        try read(ShippedResources.file("neuroshard-cost-model", kind: "NeuroShard cost model"))
    }
}
