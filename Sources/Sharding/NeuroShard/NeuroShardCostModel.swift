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
public final class NeuroShardCostModel {
    public static let formatVersion = 3
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

    let tableSizes: [Int]
    let headSizes: [Int]
    public let batchSize: Int
    /// The last-level cache that a set's hot rows are compared with: this machine's, or in
    /// training, that of the machine that measured the records.
    public var lastLevelCacheBytes = MachineCaches.lastLevelBytes
    /// The machine its training records were measured on (nil: a model from before
    /// fingerprints, an unknown machine).
    public var hardware: HardwareFingerprint?
    let parameters: ParameterBuffer
    let tableMLP: MLP
    /// Embedding to the table's own forward and backward log-milliseconds.
    let costLayer: MLP
    /// Mean embedding and scaled log table count to a log factor on each additive sum.
    let headMLP: MLP

    var embeddingWidth: Int { tableSizes.last! }
    /// Table counts are fed to the head as log(count) / log(16): about 1 for the largest
    /// collected sets.
    static let countScale = Float(log(16.0))
    /// A set's bytes read per batch over the last-level cache, fed as log2(ratio) / 8.
    static let cacheScale = Float(8)

    public init(batchSize: Int, hidden: Int = 64, embedding: Int = 32, seed: UInt64) {
        self.batchSize = batchSize
        tableSizes = [Self.featureCount, hidden, embedding]
        headSizes = [embedding + 2, hidden, 2]
        let costSizes = [embedding, 2]
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

    /// What each piece adds to a shard set: its embedding, its own forward and backward
    /// milliseconds, a count of 1 and the bytes a batch reads of it. A shard set is the sum of
    /// its pieces' vectors, so a planner can try a piece on every rank without running the
    /// table network again.
    public func embed(_ pieces: [Piece]) -> [[Float]] {
        guard !pieces.isEmpty else { return [] }
        let touched = pieces.map { $0.bytesTouched(batchSize: batchSize) }
        let embedded = tableMLP.forward(pieces.indices.flatMap { Self.features(pieces[$0], bytesTouched: touched[$0]) }, rows: pieces.count)
        let own = costLayer.forward(embedded, rows: pieces.count)
        let width = embeddingWidth
        return (0..<pieces.count).map { i in
            Array(embedded[i * width ..< (i + 1) * width]) + [exp(own[2 * i]), exp(own[2 * i + 1]), 1, Float(touched[i])]
        }
    }

    /// Forward and backward milliseconds at `batch` samples of sets whose summed table vectors
    /// (from `embed`) are `sums`; an empty set costs nothing.
    public func head(_ sums: [[Float]], batch: Int) -> [(forward: Double, backward: Double)] {
        guard !sums.isEmpty else { return [] }
        let factors = headMLP.forward(sums.flatMap { headRow($0, cache: lastLevelCacheBytes) }, rows: sums.count)
        let scale = Double(batch) / Double(batchSize), width = embeddingWidth
        return sums.indices.map { i in
            sums[i][width + 2] < 0.5 ? (0, 0)
                : (Double(sums[i][width]) * exp(Double(factors[2 * i])) * scale, Double(sums[i][width + 1]) * exp(Double(factors[2 * i + 1])) * scale)
        }
    }

    /// The head's input for a set's summed vector: the mean embedding, the scaled log count,
    /// and the scaled log ratio of the bytes a batch reads to the last-level cache `cache`.
    private func headRow(_ sum: [Float], cache: Int) -> [Float] {
        let count = max(sum[embeddingWidth + 2], 1)
        return sum[0..<embeddingWidth].map { $0 / count }
            + [log(count) / Self.countScale, log2(max(sum[embeddingWidth + 3], 1) / Float(max(cache, 1))) / Self.cacheScale]
    }

    /// Predicted forward and backward milliseconds of one shard set.
    public func predict(_ pieces: [Piece], batch: Int) -> (forward: Double, backward: Double) {
        guard !pieces.isEmpty else { return (0, 0) }
        return head([Self.sum(embed(pieces))], batch: batch)[0]
    }

    static func sum(_ rows: [[Float]]) -> [Float] {
        var total = [Float](repeating: 0, count: rows.first?.count ?? 0)
        for row in rows { for j in row.indices { total[j] += row[j] } }
        return total
    }

    // MARK: - Training

    /// Median absolute percentage error of forward + backward on `records`.
    public func medianError(_ records: [Record]) -> Double { CostCalibration.errors(of: self, on: records).all }

    /// Fits the model to `records` (measured on a machine whose last-level cache is
    /// `lastLevelCacheBytes`) with Adam on the squared error of the log times, in mini-batches
    /// of `setsPerBatch` sets, the rate decaying linearly to zero. Returns the training loss of
    /// each epoch.
    @discardableResult
    public func train(_ records: [Record], epochs: Int, learningRate: Float = 3e-3, setsPerBatch: Int = 32, seed: UInt64) -> [Double] {
        var adam = Adam(parameterCount: parameters.count, learningRate: learningRate)
        var random = SplitMix64(seed: seed, stream: "neuroshard-train")
        let pieces = records.map(\.pieces), cache = lastLevelCacheBytes
        let touchedByPiece = pieces.map { $0.map { $0.bytesTouched(batchSize: batchSize) } }
        let features = pieces.indices.map { r in pieces[r].indices.flatMap { Self.features(pieces[r][$0], bytesTouched: touchedByPiece[r][$0]) } }
        let touched = touchedByPiece.map { $0.reduce(Float(0)) { $0 + Float($1) } }
        let width = embeddingWidth
        var losses: [Double] = []
        parameters.zeroGradients()
        for epoch in 0..<epochs {
            // A linear decay to zero: a constant rate leaves the last epochs' noise (a bias of
            // several percent across all sets) in the weights.
            adam.learningRate = learningRate * (1 - Float(epoch) / Float(epochs))
            var total = 0.0
            let order = records.indices.shuffled(using: &random)
            for start in stride(from: 0, to: order.count, by: setsPerBatch) {
                let batch = Array(order[start..<min(start + setsPerBatch, order.count)])
                var groups: [Range<Int>] = [], rows = 0
                for r in batch {
                    groups.append(rows..<rows + records[r].tables.count)
                    rows += records[r].tables.count
                }
                let input = batch.flatMap { features[$0] }
                let embedded = tableMLP.forward(input, rows: rows)
                let own = costLayer.forward(embedded, rows: rows)
                var headInput: [Float] = []
                for (k, group) in groups.enumerated() {
                    var sum = [Float](repeating: 0, count: width + 4)
                    for i in group { for j in 0..<width { sum[j] += embedded[i * width + j] } }
                    sum[width + 2] = Float(group.count)
                    sum[width + 3] = touched[batch[k]]
                    headInput += headRow(sum, cache: cache)
                }
                let factors = headMLP.forward(headInput, rows: batch.count)
                // log time = logsumexp of the tables' own log times + the head's log factor.
                var factorGradient = [Float](repeating: 0, count: 2 * batch.count)
                var ownGradient = [Float](repeating: 0, count: 2 * rows)
                for (k, group) in groups.enumerated() {
                    let targets = [log(Float(records[batch[k]].forward)), log(Float(records[batch[k]].backward))]
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
                let headGradient = headMLP.backward(headInput, outputGradient: factorGradient, rows: batch.count)
                var embeddedGradient = costLayer.backward(embedded, outputGradient: ownGradient, rows: rows)
                for (k, group) in groups.enumerated() {
                    let perTable = 1 / Float(group.count)
                    for i in group { for j in 0..<width { embeddedGradient[i * width + j] += headGradient[k * (width + 2) + j] * perTable } }
                }
                tableMLP.backward(input, outputGradient: embeddedGradient, rows: rows, wantInputGradient: false)
                parameters.step(&adam)
            }
            losses.append(total / Double(2 * records.count))
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
        var parameters: [Float]
        var heldOutMedianError: Double?
        var unseenTablesMedianError: Double?
        var hardware: HardwareFingerprint?
    }

    /// Writes the model with the errors measured for it: on held-out sets of its training
    /// tables, and on sets of tables it never saw.
    public func write(to path: String, heldOutMedianError: Double?, unseenTablesMedianError: Double?) throws(PlanError) {
        let file = File(formatVersion: Self.formatVersion, featureCount: Self.featureCount, batchSize: batchSize,
                        tableSizes: tableSizes, headSizes: headSizes, parameters: parameters.valueArray,
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
              (1...(1 << 30)).contains(file.batchSize) else {
            throw PlanError("\(path): layers \(file.tableSizes) and \(file.headSizes) (batch \(file.batchSize)) are not a cost model "
                            + "this build reads (\(featureCount)-H-E and (E+2)-H-2, sizes up to 4096)")
        }
        let model = NeuroShardCostModel(batchSize: file.batchSize, hidden: file.tableSizes[1], embedding: file.tableSizes[2], seed: 0)
        guard model.headSizes == file.headSizes, file.parameters.count == model.parameters.count else {
            throw PlanError("\(path): \(file.parameters.count) parameters for layers \(file.tableSizes) and \(file.headSizes)")
        }
        guard file.parameters.allSatisfy(\.isFinite) else { throw PlanError("\(path): the cost model has parameters that are not finite numbers") }
        file.parameters.withUnsafeBufferPointer { model.parameters.values.update(from: $0.baseAddress!, count: $0.count) }
        model.hardware = file.hardware
        return model
    }

    /// The model trained on this machine that ships with MPITrain.
    public static func shipped() throws(PlanError) -> NeuroShardCostModel {
        try read(ShippedResources.file("neuroshard-cost-model", kind: "NeuroShard cost model"))
    }
}
