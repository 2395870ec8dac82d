import Foundation
import Models
import Testing

/// A small DLRM and a batch of its synthetic data, quick to differentiate.
func smallDLRM(interaction: Interaction = .dot, tables: Int = 3, optimizer: EmbeddingOptimizer = .sgd,
               seed: UInt64 = 7) throws -> (DLRM, SyntheticClicks) {
    let specs = (0..<tables).map { EmbeddingTableSpec(name: "t\($0)", rows: 50 + 10 * $0, dim: 4) }
    let config = try DLRMConfig(bottomMLP: [5, 8, 4], topMLP: [6, 1], tables: specs, interaction: interaction)
    let data = try SyntheticClicks(config: config, pooling: [Int](repeating: 2, count: tables), randomPooling: true, seed: seed)
    return (DLRM(config: config, embeddingOptimizer: optimizer, seed: seed), data)
}

@Suite struct DLRMGradientTests {
    /// Directional derivatives of the batch loss, along random directions over every MLP
    /// parameter and every embedding row the batch uses, against central differences in Double
    /// precision of the loss. ReLU kinks make single entries noisy, so directions cover all.
    @Test(arguments: Interaction.allCases)
    func endToEndGradientsMatchFiniteDifferences(interaction: Interaction) throws {
        let (dlrm, data) = try smallDLRM(interaction: interaction)
        let batch = data.batch(samples: 0..<32)
        _ = dlrm.computeGradients(batch)
        let mlpGradient = dlrm.parameters.gradientArray
        let shards = dlrm.embeddings.shards
        let rowGradients = shards.map { shard in
            Dictionary(uniqueKeysWithValues: shard.gradientRows.map { (Int($0), Array(shard.gradient(ofRow: Int($0))!)) })
        }
        let original = dlrm.parameters.valueArray
        let originalRows = shards.map { Array(UnsafeBufferPointer(start: $0.weights, count: $0.rows * $0.width)) }
        func loss() -> Double { BinaryMetrics(logits: dlrm.predict(batch), labels: batch.labels).loss }
        var random = SplitMix64(seed: 9)
        var errors: [Double] = []
        for _ in 0..<6 {
            let direction = (0..<original.count).map { _ in Float(random.nextGaussian()) }
            let rowDirections = shards.map { shard in (0..<shard.rows * shard.width).map { _ in Float(random.nextGaussian()) } }
            var predicted = zip(mlpGradient, direction).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            for (s, shard) in shards.enumerated() {
                for (row, gradient) in rowGradients[s] {
                    for c in 0..<shard.width { predicted += Double(gradient[c] * rowDirections[s][row * shard.width + c]) }
                }
            }
            func move(_ h: Float) {
                dlrm.parameters.valueArray = zip(original, direction).map { $0 + h * $1 }
                for (s, shard) in shards.enumerated() {
                    for i in 0..<shard.rows * shard.width { shard.weights[i] = originalRows[s][i] + h * rowDirections[s][i] }
                }
            }
            let h: Float = 1e-3
            move(h)
            let up = loss()
            move(-h)
            let down = loss()
            move(0)
            let numeric = (up - down) / Double(2 * h)
            errors.append(abs(numeric - predicted) / max(abs(predicted), 1e-3))
        }
        #expect(errors.sorted()[errors.count / 2] < 2e-2, "relative errors \(errors)")
    }

    /// The interaction reads pooled vectors and writes their gradients wherever a layout puts
    /// them: tables in another order, each in a block of its own stride, give the dense
    /// layout's logits, MLP gradients and vector gradients bit for bit.
    @Test(arguments: Interaction.allCases)
    func pooledVectorsAnywhereMatchTheDenseLayout(interaction: Interaction) throws {
        let (dlrm, data) = try smallDLRM(interaction: interaction)
        let batch = data.batch(samples: 0..<16)
        let rows = batch.count, widths = dlrm.config.tables.map(\.dim), width = dlrm.pooledWidth
        let stride = width + 3
        var dense = [Float](repeating: 0, count: rows * width)
        dlrm.embeddings.forward(batch.bags, into: &dense)
        func run(_ vectors: PooledVectors, _ gradients: PooledVectors) -> (logits: [Float], mlp: [Float]) {
            dlrm.parameters.zeroGradients()
            batch.dense.withUnsafeBufferPointer { dlrm.forwardBottom(dense: $0.baseAddress!, rows: rows) }
            dlrm.forwardTop(pooled: vectors, rows: rows)
            _ = batch.labels.withUnsafeBufferPointer {
                dlrm.backwardTop(pooled: vectors, labels: $0.baseAddress!, rows: rows, divisor: rows, pooledGradient: gradients)
            }
            batch.dense.withUnsafeBufferPointer { dlrm.backwardBottom(dense: $0.baseAddress!, rows: rows) }
            return (Array(UnsafeBufferPointer(start: dlrm.logits, count: rows)), dlrm.parameters.gradientArray)
        }
        var denseGradient = [Float](repeating: 0, count: rows * width)
        let expected = dense.withUnsafeMutableBufferPointer { pooled in
            denseGradient.withUnsafeMutableBufferPointer { gradient in
                run(dlrm.denseLayout(pooled.baseAddress!), dlrm.denseLayout(gradient.baseAddress!))
            }
        }
        // Tables back to front, rows `stride` floats apart, gradients in a buffer of their own.
        let order = Array(widths.indices.reversed())
        var moved = [Float](repeating: .nan, count: rows * stride), movedGradient = [Float](repeating: .nan, count: rows * stride)
        var offsets = [Int](repeating: 0, count: widths.count), column = 0
        for t in order {
            offsets[t] = column
            column += widths[t]
        }
        for r in 0..<rows {
            for t in widths.indices {
                for c in 0..<widths[t] { moved[r * stride + offsets[t] + c] = dense[r * width + widths[..<t].reduce(0, +) + c] }
            }
        }
        let got = moved.withUnsafeMutableBufferPointer { pooled in
            movedGradient.withUnsafeMutableBufferPointer { gradient in
                run(PooledVectors(bases: offsets.map { pooled.baseAddress! + $0 }, strides: widths.map { _ in stride }, widths: widths),
                    PooledVectors(bases: offsets.map { gradient.baseAddress! + $0 }, strides: widths.map { _ in stride }, widths: widths))
            }
        }
        #expect(got.logits == expected.logits && got.mlp == expected.mlp)
        for r in 0..<rows {
            for t in widths.indices {
                for c in 0..<widths[t] {
                    #expect(movedGradient[r * stride + offsets[t] + c] == denseGradient[r * width + widths[..<t].reduce(0, +) + c])
                }
            }
        }
    }

    /// The sparse gradient holds each used row once, summed over its occurrences.
    @Test func sparseGradientSumsRepeatedRows() {
        let table = EmbeddingTableSpec(name: "t", rows: 6, dim: 3)
        let bags = EmbeddingBagCollection(tables: [table], optimizer: .sgd, seed: 1)
        let batch = BagBatch(batchSize: 3, features: 1, offsets: [0, 2, 2, 5], indices: [4, 1, 4, 4, 0])
        var output = [Float](repeating: 0, count: 9)
        output.withUnsafeMutableBufferPointer { bags.forward(batch, into: $0.baseAddress!) }
        let weights = bags.shards[0].weights
        for c in 0..<3 {
            #expect(output[c] == weights[12 + c] + weights[3 + c])
            #expect(output[3 + c] == 0, "an empty bag pools to zero")
        }
        let gradient: [Float] = [1, 2, 3, 10, 20, 30, 100, 200, 300]
        gradient.withUnsafeBufferPointer { bags.backward(batch, outputGradient: $0.baseAddress!) }
        let shard = bags.shards[0]
        #expect(shard.gradientRows.sorted() == [0, 1, 4])
        #expect(Array(shard.gradient(ofRow: 4)!) == [201, 402, 603])
        #expect(Array(shard.gradient(ofRow: 0)!) == [100, 200, 300])
        #expect(shard.gradient(ofRow: 2) == nil)
    }

    /// A column-wise split of a table starts from, and pools to, the same values as the table.
    @Test func columnShardsMatchTheWholeTable() {
        let table = EmbeddingTableSpec(name: "t", rows: 20, dim: 8)
        let whole = EmbeddingBagCollection(tables: [table], optimizer: .sgd, seed: 3)
        let split = EmbeddingBagCollection(tables: [table], shards: [.init(table: 0, columns: 5..<8), .init(table: 0, columns: 0..<5)],
                                           optimizer: .sgd, seed: 3)
        let batch = BagBatch(batchSize: 2, features: 1, offsets: [0, 3, 4], indices: [1, 7, 19, 3])
        var a = [Float](repeating: 0, count: 16), b = a
        a.withUnsafeMutableBufferPointer { whole.forward(batch, into: $0.baseAddress!) }
        b.withUnsafeMutableBufferPointer { split.forward(batch, into: $0.baseAddress!) }
        for sample in 0..<2 {
            #expect(Array(a[sample * 8 + 5 ..< sample * 8 + 8]) == Array(b[sample * 8 ..< sample * 8 + 3]))
            #expect(Array(a[sample * 8 ..< sample * 8 + 5]) == Array(b[sample * 8 + 3 ..< sample * 8 + 8]))
        }
    }

    @Test func rowWiseAdagradTouchesOnlyUsedRows() {
        let table = EmbeddingTableSpec(name: "t", rows: 4, dim: 2)
        let bags = EmbeddingBagCollection(tables: [table], optimizer: .adagrad, seed: 2)
        let before = Array(UnsafeBufferPointer(start: bags.shards[0].weights, count: 8))
        let batch = BagBatch(batchSize: 1, features: 1, offsets: [0, 1], indices: [2])
        let gradient: [Float] = [3, 4]
        gradient.withUnsafeBufferPointer { bags.backward(batch, outputGradient: $0.baseAddress!) }
        bags.update(learningRate: 0.5)
        let after = Array(UnsafeBufferPointer(start: bags.shards[0].weights, count: 8))
        // state = mean(9, 16) = 12.5; step = 0.5 · g / sqrt(12.5).
        let scale: Float = 0.5 / Float(12.5).squareRoot()
        let expected: [Float] = [before[4] - scale * 3, before[5] - scale * 4]
        #expect(abs(after[4] - expected[0]) < 1e-6 && abs(after[5] - expected[1]) < 1e-6)
        #expect(Array(after[0..<4]) == Array(before[0..<4]) && Array(after[6..<8]) == Array(before[6..<8]))
    }
}

@Suite struct DLRMTrainingTests {
    @Test func sameSeedSameModelBitForBit() throws {
        func train() throws -> [Float] {
            let (dlrm, data) = try smallDLRM(optimizer: .adagrad)
            for step in 0..<20 { dlrm.trainStep(data.batch(samples: step * 64 ..< (step + 1) * 64), learningRate: 0.1) }
            return dlrm.parameters.valueArray + dlrm.predict(data.heldOut(count: 100))
        }
        #expect(try train() == train())
    }

    /// Synthetic teacher data with 8 tables: held-out AUC from about 0.5 to at least 0.75
    /// within 2,000 steps of batch 512.
    @Test func learnsTheTeacher() throws {
        let tables = (0..<8).map { EmbeddingTableSpec(name: "t\($0)", rows: 1000, dim: 16) }
        let config = try DLRMConfig(bottomMLP: [13, 64, 16], topMLP: [64, 32, 1], tables: tables)
        let data = try SyntheticClicks(config: config, pooling: [Int](repeating: 2, count: 8), seed: 1)
        let dlrm = DLRM(config: config, seed: 2)
        let heldOut = data.heldOut(count: 8192)
        let untrained = BinaryMetrics(logits: dlrm.predict(heldOut), labels: heldOut.labels)
        for step in 0..<2000 { dlrm.trainStep(data.batch(samples: step * 512 ..< (step + 1) * 512), learningRate: 0.2) }
        let trained = BinaryMetrics(logits: dlrm.predict(heldOut), labels: heldOut.labels)
        #expect(abs(untrained.auc! - 0.5) < 0.08, "untrained AUC \(untrained.auc!)")
        #expect(trained.auc! >= 0.75, "trained AUC \(trained.auc!)")
    }
}

@Suite struct BinaryMetricsTests {
    @Test func aucCountsTiesAsHalf() {
        #expect(BinaryMetrics.rocAUC(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]) == 0.75)
        #expect(BinaryMetrics.rocAUC(scores: [0.5, 0.5, 0.5, 0.5], labels: [0, 1, 0, 1]) == 0.5)
        #expect(BinaryMetrics.rocAUC(scores: [1, 2, 2, 3], labels: [0, 1, 0, 1]) == 0.875)
        #expect(BinaryMetrics.rocAUC(scores: [1, 2], labels: [1, 1]) == nil)
    }

    @Test func normalizedEntropyOfTheBaseRateIsOne() {
        let labels: [Float] = [1, 0, 0, 0]
        let logit = Float(log(0.25 / 0.75))
        let metrics = BinaryMetrics(logits: [Float](repeating: logit, count: 4), labels: labels)
        #expect(abs(metrics.normalizedEntropy! - 1) < 1e-6)
        #expect(metrics.accuracy == 0.75)
    }

    @Test func scheduleWarmsUpAndDecays() {
        let schedule = LearningRateSchedule(base: 1, warmupSteps: 4, decayStart: 10, decaySteps: 10)
        #expect(schedule.rate(at: 0) == 0.25 && schedule.rate(at: 3) == 1 && schedule.rate(at: 9) == 1)
        #expect(schedule.rate(at: 15) == 0.25 && schedule.rate(at: 20) == 0 && schedule.rate(at: 30) == 0)
    }
}

@Suite struct RankCorrelationTests {
    @Test func spearmanComparesOrderingsAndSharesRanksBetweenTies() {
        #expect(spearman([1, 2, 3, 4], [10, 20, 35, 40]) == 1)
        #expect(spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1)
        #expect(spearman([1, 1, 1], [1, 2, 3]) == 0)
        // Ranks [0, 1.5, 1.5, 3] against [0, 1, 2, 3]: covariance 4.5 over sqrt(4.5 * 5).
        #expect(abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 4.5 / (4.5 * 5.0).squareRoot()) < 1e-12)
        #expect(BinaryMetrics.rocAUC(scores: [0.1, 0.4, 0.4, 0.9], labels: [0, 1, 0, 1]) == 0.875)
    }
}
