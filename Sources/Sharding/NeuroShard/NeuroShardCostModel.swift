import Foundation
import Models

/// NeuroShard's compute cost model: a per-table MLP over 21 table features, summed over the
/// tables of a shard set, then a head MLP predicting the set's forward and backward
/// milliseconds (as logarithms, so that small and large sets are fit alike) at the batch size it
/// was trained on; other batch sizes scale linearly. Communication is priced by the calibrated
/// all-to-all model.
public final class NeuroShardCostModel {
    public static let formatVersion = 1
    /// Features per table: width, rows, pooling, bytes, and the 17 reuse bins.
    public static let featureCount = 4 + ReuseBins.count

    /// One measured shard set: tables with the columns each contributes, and the oracle's times.
    public struct Record: Codable, Sendable {
        public var tables: [TableSpec]
        public var columns: [Int]
        public var forward: Double
        public var backward: Double

        public init(tables: [TableSpec], columns: [Int], forward: Double, backward: Double) {
            self.tables = tables
            self.columns = columns
            self.forward = forward
            self.backward = backward
        }
    }

    /// What `costs collect` writes.
    public struct Dataset: Codable, Sendable {
        public var batchSize: Int
        public var records: [Record]

        public init(batchSize: Int, records: [Record]) {
            self.batchSize = batchSize
            self.records = records
        }

        public static func read(_ path: String) throws(PlanError) -> Dataset {
            do { return try JSONDecoder().decode(Dataset.self, from: Data(contentsOf: URL(fileURLWithPath: path))) }
            catch { throw PlanError("\(path): not a cost data set (\(JSONProblem.describe(error)))") }
        }
    }

    let tableSizes: [Int]
    let headSizes: [Int]
    public let batchSize: Int
    let parameters: ParameterBuffer
    let tableMLP: MLP
    let headMLP: MLP

    public init(batchSize: Int, hidden: Int = 64, embedding: Int = 32, seed: UInt64) {
        self.batchSize = batchSize
        tableSizes = [Self.featureCount, hidden, embedding]
        headSizes = [embedding, hidden, 2]
        parameters = ParameterBuffer(count: MLP.parameterCount(sizes: tableSizes) + MLP.parameterCount(sizes: headSizes))
        tableMLP = MLP(sizes: tableSizes, reluOnLast: true, parameters: parameters, offset: 0)
        headMLP = MLP(sizes: headSizes, reluOnLast: false, parameters: parameters, offset: tableMLP.parameterCount)
        var random = SplitMix64(seed: seed, stream: "neuroshard-cost-model")
        tableMLP.initialize(&random)
        headMLP.initialize(&random)
    }

    /// The normalised features of `columns` columns of `table`.
    public static func features(_ table: TableSpec, columns: Int) -> [Float] {
        let bytes = Double(table.rows * columns * MemoryLayout<Float>.size)
        return [Float(Double(columns) / 128), Float(log10(Double(table.rows)) / 6), Float(log10(1 + table.poolingFactor) / log10(201.0)),
                Float(log10(bytes) / 10)] + table.bins.fractions.map(Float.init)
    }

    // MARK: - Prediction

    /// The per-table embedding of each (table, columns), rows of `tableSizes.last` floats.
    public func embed(_ items: [(table: TableSpec, columns: Int)]) -> [[Float]] {
        guard !items.isEmpty else { return [] }
        let input = items.flatMap { Self.features($0.table, columns: $0.columns) }
        input.withUnsafeBufferPointer { tableMLP.forward($0.baseAddress!, rows: items.count) }
        let width = tableSizes.last!
        return (0..<items.count).map { Array(UnsafeBufferPointer(start: tableMLP.output + $0 * width, count: width)) }
    }

    /// Forward and backward milliseconds at `batch` samples of sets whose summed table
    /// embeddings are `sums` (an empty set costs nothing).
    public func head(_ sums: [[Float]], batch: Int) -> [(forward: Double, backward: Double)] {
        guard !sums.isEmpty else { return [] }
        let input = sums.flatMap { $0 }
        input.withUnsafeBufferPointer { headMLP.forward($0.baseAddress!, rows: sums.count) }
        let scale = Double(batch) / Double(batchSize)
        return sums.indices.map { i in
            sums[i].allSatisfy({ $0 == 0 }) ? (0, 0)
                : (exp(Double(headMLP.output[2 * i])) * scale, exp(Double(headMLP.output[2 * i + 1])) * scale)
        }
    }

    /// Predicted forward and backward milliseconds of one shard set.
    public func predict(_ items: [(table: TableSpec, columns: Int)], batch: Int) -> (forward: Double, backward: Double) {
        guard !items.isEmpty else { return (0, 0) }
        return head([Self.sum(embed(items))], batch: batch)[0]
    }

    static func sum(_ rows: [[Float]]) -> [Float] {
        var total = [Float](repeating: 0, count: rows.first?.count ?? 0)
        for row in rows { for j in row.indices { total[j] += row[j] } }
        return total
    }

    // MARK: - Training

    /// Median absolute percentage error of forward + backward on `records`.
    public func medianError(_ records: [Record]) -> Double {
        median(records.map { record in
            let p = predict(zip(record.tables, record.columns).map { ($0, $1) }, batch: batchSize)
            let measured = record.forward + record.backward
            return abs(p.forward + p.backward - measured) / measured
        })
    }

    /// Fits the model to `records` with Adam on the squared error of the log times, in
    /// mini-batches of `setsPerBatch` sets. Returns the training loss of each epoch.
    @discardableResult
    public func train(_ records: [Record], epochs: Int, learningRate: Float = 3e-3, setsPerBatch: Int = 32, seed: UInt64) -> [Double] {
        var adam = Adam(parameterCount: parameters.count, learningRate: learningRate)
        let decays = [Bool](repeating: false, count: parameters.count)
        var random = SplitMix64(seed: seed, stream: "neuroshard-train")
        let features = records.map { record in zip(record.tables, record.columns).flatMap { Self.features($0, columns: $1) } }
        let embedding = tableSizes.last!
        var losses: [Double] = []
        for _ in 0..<epochs {
            var total = 0.0
            let order = records.indices.shuffled(using: &random)
            for start in stride(from: 0, to: order.count, by: setsPerBatch) {
                let batch = Array(order[start..<min(start + setsPerBatch, order.count)])
                let input = batch.flatMap { features[$0] }
                let rows = input.count / Self.featureCount
                parameters.zeroGradients()
                input.withUnsafeBufferPointer { tableMLP.forward($0.baseAddress!, rows: rows) }
                // Sum each set's table embeddings.
                var sums = [Float](repeating: 0, count: batch.count * embedding)
                var row = 0
                for (k, r) in batch.enumerated() {
                    for _ in records[r].tables.indices {
                        for j in 0..<embedding { sums[k * embedding + j] += tableMLP.output[row * embedding + j] }
                        row += 1
                    }
                }
                sums.withUnsafeBufferPointer { headMLP.forward($0.baseAddress!, rows: batch.count) }
                var outputGradient = [Float](repeating: 0, count: 2 * batch.count)
                for (k, r) in batch.enumerated() {
                    let targets = [log(Float(records[r].forward)), log(Float(records[r].backward))]
                    for o in 0..<2 {
                        let error = headMLP.output[2 * k + o] - targets[o]
                        total += Double(error * error)
                        outputGradient[2 * k + o] = 2 * error / Float(batch.count)
                    }
                }
                var sumGradient = [Float](repeating: 0, count: batch.count * embedding)
                sums.withUnsafeBufferPointer { input in
                    outputGradient.withUnsafeBufferPointer { gradient in
                        sumGradient.withUnsafeMutableBufferPointer { dInput in
                            headMLP.backward(input.baseAddress!, outputGradient: gradient.baseAddress!, rows: batch.count,
                                             inputGradient: dInput.baseAddress!)
                        }
                    }
                }
                // Every table of a set receives its set's gradient.
                var tableGradient = [Float](repeating: 0, count: rows * embedding)
                row = 0
                for (k, r) in batch.enumerated() {
                    for _ in records[r].tables.indices {
                        for j in 0..<embedding { tableGradient[row * embedding + j] = sumGradient[k * embedding + j] }
                        row += 1
                    }
                }
                input.withUnsafeBufferPointer { input in
                    tableGradient.withUnsafeBufferPointer { gradient in
                        tableMLP.backward(input.baseAddress!, outputGradient: gradient.baseAddress!, rows: rows, inputGradient: nil)
                    }
                }
                var values = parameters.valueArray
                adam.update(&values, gradients: parameters.gradientArray, decays: decays)
                values.withUnsafeBufferPointer { parameters.values.update(from: $0.baseAddress!, count: parameters.count) }
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
    }

    /// Writes the model with the errors measured for it: on held-out sets of its training
    /// tables, and on sets of tables it never saw.
    public func write(to path: String, heldOutMedianError: Double?, unseenTablesMedianError: Double?) throws(PlanError) {
        let file = File(formatVersion: Self.formatVersion, featureCount: Self.featureCount, batchSize: batchSize,
                        tableSizes: tableSizes, headSizes: headSizes, parameters: parameters.valueArray,
                        heldOutMedianError: heldOutMedianError, unseenTablesMedianError: unseenTablesMedianError)
        do { try JSONFile.write(file, to: path) } catch { throw PlanError(error.description) }
    }

    public static func read(_ path: String) throws(PlanError) -> NeuroShardCostModel {
        let file = try VersionedFile.read(File.self, from: path, kind: "cost model", formatVersion: formatVersion)
        guard file.featureCount == featureCount, file.tableSizes.first == featureCount, file.headSizes.last == 2,
              file.tableSizes.last == file.headSizes.first, file.batchSize > 0 else {
            throw PlanError("\(path): the cost model was trained with other features (\(file.featureCount), this build uses \(featureCount))")
        }
        let model = NeuroShardCostModel(batchSize: file.batchSize, hidden: file.tableSizes[1], embedding: file.tableSizes[2], seed: 0)
        guard model.headSizes == file.headSizes, file.parameters.count == model.parameters.count else {
            throw PlanError("\(path): \(file.parameters.count) parameters for layers \(file.tableSizes) and \(file.headSizes)")
        }
        file.parameters.withUnsafeBufferPointer { model.parameters.values.update(from: $0.baseAddress!, count: $0.count) }
        return model
    }

    /// The model trained on this machine that ships with MPITrain.
    public static func shipped() throws(PlanError) -> NeuroShardCostModel {
        try read(VersionedFile.shipped("neuroshard-cost-model", kind: "NeuroShard cost model"))
    }
}
