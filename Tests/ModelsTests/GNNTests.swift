import Foundation
import Models
import TestSupport
import Testing

/// A small two-community graph with learnable features, quick to train and differentiate.
func smallGraph(nodes: Int = 300, seed: UInt64 = 3) -> Graph {
    var generator = ContextualSBM()
    generator.nodeCount = nodes
    generator.averageDegree = 6
    generator.classCount = 3
    generator.featureCount = 12
    generator.signalToNoise = 0.5
    generator.trainFraction = 0.3
    generator.seed = seed
    return generator.generate()
}

func config(_ architecture: GNNArchitecture, layers: Int, graph: Graph) -> GNNConfig {
    var config = GNNConfig(inputWidth: graph.featureCount, classes: graph.classCount)
    config.architecture = architecture
    config.layers = layers
    config.hidden = 8
    config.dropout = 0
    config.residual = layers > 2
    config.seed = 11
    return config
}

@Suite struct GNNGradientTests {
    /// Loss of one full forward pass with the stage's current parameters.
    func loss(_ stage: GNNStage, trainCount: Int) -> Double {
        stage.beginEpoch(0, training: true)
        stage.forward(rows: 0..<stage.graph.nodeCount)
        return stage.loss(rows: 0..<stage.graph.nodeCount, trainCount: trainCount).loss
    }

    /// Directional derivatives along random directions against central differences. ReLU kinks
    /// make single entries noisy in Float32, so the check looks at the whole gradient at once.
    @Test(arguments: [(GNNArchitecture.gcn, 2), (.gcn, 4), (.gcnii, 4)])
    func gradientsMatchFiniteDifferences(architecture: GNNArchitecture, layers: Int) {
        let graph = smallGraph()
        let stage = GNNStage(config: config(architecture, layers: layers, graph: graph), graph: graph, layers: 0..<layers)
        let trainCount = graph.nodes(.train).count
        _ = loss(stage, trainCount: trainCount)
        stage.backward(rows: 0..<graph.nodeCount)
        let analytic = stage.withGradients { $0 }
        let original = stage.parameters
        var rng = SplitMix64(seed: 5)
        var errors: [Double] = []
        for _ in 0..<7 {
            let direction = (0..<analytic.count).map { _ in Float(rng.nextGaussian()) }
            let h: Float = 1e-4
            stage.parameters = zip(original, direction).map { $0 + h * $1 }
            let up = loss(stage, trainCount: trainCount)
            stage.parameters = zip(original, direction).map { $0 - h * $1 }
            let down = loss(stage, trainCount: trainCount)
            stage.parameters = original
            let numeric = (up - down) / Double(2 * h)
            let predicted = zip(analytic, direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            errors.append(abs(numeric - predicted) / max(abs(predicted), 1e-3))
        }
        errors.sort()
        #expect(errors[3] < 0.02, "median relative difference \(errors[3]) (all: \(errors))")
        #expect(errors[6] < 0.08, "largest relative difference \(errors[6])")
    }

    @Test func chunkedForwardEqualsWholeGraphWhenNothingIsStale() {
        // Chunk by chunk, later chunks read last epoch's rows; with one epoch of exact values
        // in place and unchanged weights, the chunked pass must reproduce the exact one.
        let graph = smallGraph()
        let stage = GNNStage(config: config(.gcn, layers: 3, graph: graph), graph: graph, layers: 0..<3)
        let all = 0..<graph.nodeCount
        stage.beginEpoch(0, training: true)
        stage.forward(rows: all)
        let exact = stage.accuracy(rows: all, role: .test)
        stage.beginEpoch(1, training: true)
        for start in stride(from: 0, to: graph.nodeCount, by: 70) { stage.forward(rows: start..<min(start + 70, graph.nodeCount)) }
        #expect(stage.accuracy(rows: all, role: .test) == exact)
    }

    /// With weights held and no dropout, a chunked epoch's gradient plus the stale part it
    /// deferred from the epoch before is the exact gradient. A deferred gradient moves one layer
    /// down per epoch, so the sum settles after as many chunked epochs as there are layers.
    @Test(arguments: [GNNArchitecture.gcn, .gcnii])
    func deferredGradientsCompleteTheExactOne(architecture: GNNArchitecture) {
        let graph = smallGraph()
        let stage = GNNStage(config: config(architecture, layers: 4, graph: graph), graph: graph, layers: 0..<4)
        let n = graph.nodeCount, trainCount = graph.nodes(.train).count
        stage.beginEpoch(0, training: true)
        stage.forward(rows: 0..<n)
        _ = stage.loss(rows: 0..<n, trainCount: trainCount)
        stage.backward(rows: 0..<n)
        let exact = stage.withGradients { $0 }
        let chunks = stride(from: 0, to: n, by: 70).map { $0..<min($0 + 70, n) }
        let chunkOf = (0..<n).map { Int32($0 / 70) }
        for epoch in 1...5 {
            stage.beginEpoch(epoch, training: true)
            for rows in chunks {
                stage.forward(rows: rows)
                _ = stage.loss(rows: rows, trainCount: trainCount)
            }
            for (position, rows) in chunks.enumerated().reversed() {
                chunkOf.withUnsafeBufferPointer { stage.backward(rows: rows, chunkOf: $0.baseAddress, chunk: Int32(position)) }
            }
        }
        let pipelined = stage.withGradients { $0 }
        let scale = exact.map { abs($0) }.max()!
        let worst = zip(exact, pipelined).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * scale, "largest difference \(worst) against a largest gradient of \(scale)")
    }
}

@Suite struct GNNTrainingTests {
    @Test func sameSeedSameResultBitForBit() {
        let graph = smallGraph()
        var c = config(.gcn, layers: 3, graph: graph)
        c.dropout = 0.5
        func run() -> [Float] {
            let trainer = try! GNNTrainer(config: c, graph: graph)
            for epoch in 0..<5 { _ = trainer.trainEpoch(epoch) }
            return trainer.stage.parameters
        }
        #expect(run() == run())
    }

    @Test func learnsASmallGraph() throws {
        let graph = smallGraph(nodes: 600)
        var c = config(.gcn, layers: 2, graph: graph)
        c.dropout = 0.5
        let trainer = try GNNTrainer(config: c, graph: graph)
        let before = trainer.evaluate(0).test
        for epoch in 0..<100 { _ = trainer.trainEpoch(epoch) }
        let after = trainer.evaluate(100).test
        #expect(after > 0.8, "test accuracy \(after), untrained \(before)")
    }

    /// GCNII as its paper trains it: the convolutions decay by their own rate, the input and
    /// output layers by the weight decay; GCN decays layer 0 only unless told otherwise.
    @Test func eachLayerDecaysByItsKind() {
        let graph = smallGraph()
        var gcnii = config(.gcnii, layers: 5, graph: graph)
        gcnii.weightDecay = 5e-4
        gcnii.convolutionWeightDecay = 0.01
        #expect((0..<5).map(gcnii.weightDecay(of:)) == [5e-4, 0.01, 0.01, 0.01, 5e-4])
        var gcn = config(.gcn, layers: 3, graph: graph)
        gcn.weightDecay = 5e-4
        #expect((0..<3).map(gcn.weightDecay(of:)) == [5e-4, 0, 0])
        gcn.decayAllLayers = true
        #expect((0..<3).map(gcn.weightDecay(of:)) == [5e-4, 5e-4, 5e-4])
    }

    @Test func adamDecaysEachParameterByItsOwnRate() {
        var adam = Adam(parameterCount: 3, learningRate: 0.1)
        var parameters: [Float] = [1, 1, 1]
        for _ in 0..<10 { adam.update(&parameters, gradients: [0, 0, 0], decays: [0, 0.01, 1]) }
        #expect(parameters[0] == 1)
        #expect(parameters[1] < 1 && parameters[2] < 1, "\(parameters)")
        var undecayed = Adam(parameterCount: 1, learningRate: 0.1)
        var alone: [Float] = [1]
        undecayed.update(&alone, gradients: [0])
        #expect(alone == [1])
    }

    /// The share of neighbours a pipelined epoch reads from last epoch: none with one chunk,
    /// and with several, the edges whose far end is in a later chunk, counted directly.
    @Test func historicalNeighbourShareCountsEdgesIntoLaterChunks() throws {
        let graph = smallGraph(nodes: 600)
        let c = config(.gcn, layers: 4, graph: graph)
        let whole = try GNNLayout(config: c, graph: graph, stages: 2, partitions: 1, chunks: 1, partitioner: .metis, seed: 1)
        #expect(whole.historicalNeighbourShare(of: graph.permuted(by: whole.order)) == 0)
        let layout = try GNNLayout(config: c, graph: graph, stages: 2, partitions: 1, chunks: 4, partitioner: .contiguous, seed: 1)
        let permuted = graph.permuted(by: layout.order)
        var later = 0, edges = 0
        for row in 0..<permuted.nodeCount {
            for k in permuted.adjacency.rowOffsets[row]..<permuted.adjacency.rowOffsets[row + 1] {
                let column = Int(permuted.adjacency.columns[k])
                guard column != row else { continue }
                edges += 1
                if layout.chunkOf[column] > layout.chunkOf[row] { later += 1 }
            }
        }
        let share = layout.historicalNeighbourShare(of: permuted)
        #expect(share == Double(later) / Double(edges))
        #expect(share > 0.1 && share < 0.5, "\(share)")
    }

    @Test func gradientAgreementIsCosineAndNormRatio() {
        let exact: [Float] = [3, 4, 0]
        let same = GradientAgreement(exact: exact[...], pipelined: exact[...])
        #expect(abs(same.cosine - 1) < 1e-12 && abs(same.normRatio - 1) < 1e-12)
        let opposite = GradientAgreement(exact: exact[...], pipelined: [-1.5, -2, 0])
        #expect(abs(opposite.cosine + 1) < 1e-12 && abs(opposite.normRatio - 0.5) < 1e-12)
        let across = GradientAgreement(exact: exact[...], pipelined: [0, 0, 10])
        #expect(across.cosine == 0 && abs(across.normRatio - 2) < 1e-12)
        let none = GradientAgreement(exact: [0, 0, 0], pipelined: exact[...])
        #expect(none.cosine == 0 && none.normRatio == 0)
    }

    /// The check runs pipelined passes beside exact training: the losses stay the same to the last
    /// bit, the output layer (which reads no neighbours) gets the exact gradient once the rows
    /// are this epoch's, and the convolutions lose the gradient through later chunks.
    @Test func aGradientCheckLeavesTrainingAsItIs() throws {
        let graph = smallGraph(nodes: 600)
        var c = config(.gcnii, layers: 8, graph: graph)
        c.dropout = 0.5
        let checked = try GNNTrainer(config: c, graph: graph, chunks: 4)
        checked.gradientCheckEvery = 2
        let plain = try GNNTrainer(config: c, graph: graph, chunks: 4)
        var checks: [PipelinedGradientCheck] = []
        for epoch in 0..<6 {
            #expect(checked.trainEpoch(epoch).loss == plain.trainEpoch(epoch).loss)
            if let check = checked.lastGradientCheck, check.epoch == epoch + 1 { checks.append(check) }
        }
        #expect(checked.stage.parameters == plain.stage.parameters)
        #expect(checks.map(\.epoch) == [2, 4, 6])
        for check in checks {
            #expect(check.pipelinedPerLayer.count == 8 && check.droppedOnlyPerLayer.count == 8)
            let output = check.droppedOnlyPerLayer[7]
            #expect(abs(output.cosine - 1) < 1e-5 && abs(output.normRatio - 1) < 1e-5, "\(output)")
            let convolution = check.droppedOnlyPerLayer[1]
            #expect(convolution.cosine < 0.999, "\(convolution)")
            #expect(check.pipelinedLoss.isFinite && check.pipelinedLoss != check.exactLoss)
        }
    }

    /// A partition's graph: its own rows first with their neighbours renumbered, then its halo in
    /// increasing order, each node's features, label and role carried along.
    @Test func aPartitionGraphHoldsItsNodesAndTheirHalo() {
        let whole = smallGraph(nodes: 200)
        let own = 50..<120
        let part = PartitionGraph(whole, owning: own)
        let a = whole.adjacency, local = part.graph.adjacency
        var halo = Set<Int32>(), edges = 0
        for i in own {
            for k in a.rowOffsets[i]..<a.rowOffsets[i + 1] {
                let j = Int(a.columns[k])
                if !own.contains(j) { halo.insert(Int32(j)) }
                if !own.contains(j) || j > i { edges += 1 }
            }
        }
        #expect(part.ownCount == 70 && !halo.isEmpty)
        #expect(part.globalIDs == own.map { Int32($0) } + halo.sorted())
        #expect(part.graph.nodeCount == 70 + halo.count && part.graph.edgeCount == edges)
        for (row, i) in own.enumerated() {
            let global = Array(a.columns[a.rowOffsets[i]..<a.rowOffsets[i + 1]])
            let mapped = local.columns[local.rowOffsets[row]..<local.rowOffsets[row + 1]].map { part.globalIDs[Int($0)] }
            #expect(mapped == global)
            #expect(Array(local.values[local.rowOffsets[row]..<local.rowOffsets[row + 1]]) == Array(a.values[a.rowOffsets[i]..<a.rowOffsets[i + 1]]))
        }
        for row in 70..<part.graph.nodeCount { #expect(local.rowOffsets[row] == local.rowOffsets[row + 1]) }
        let everything = PartitionGraph(whole, owning: 0..<200)
        #expect(everything.graph.adjacency == whole.adjacency && everything.globalIDs == (0..<200).map { Int32($0) })
        for (row, node) in part.globalIDs.enumerated() {
            #expect(part.local(node) == Int32(row))
            #expect(part.graph.labels[row] == whole.labels[Int(node)] && part.graph.roles[row] == whole.roles[Int(node)])
            let width = whole.featureCount
            #expect(Array(part.graph.features[row * width..<(row + 1) * width]) == Array(whole.features[Int(node) * width..<(Int(node) + 1) * width]))
        }
    }

    @Test func rejectsShapesThatCannotWork() {
        let graph = smallGraph()
        #expect(throws: ConfigError.self) { try GNNTrainer(config: config(.gcnii, layers: 2, graph: graph), graph: graph) }
        var wrong = config(.gcn, layers: 2, graph: graph)
        wrong.inputWidth += 1
        #expect(throws: ConfigError.self) { try GNNTrainer(config: wrong, graph: graph) }
        var dropout = config(.gcn, layers: 2, graph: graph)
        dropout.dropout = 1
        #expect(throws: ConfigError.self) { try GNNTrainer(config: dropout, graph: graph) }
    }
}

/// Moving averages of historical rows and deferred gradients (PipeGCN's smoothing) on a stage
/// run chunk by chunk, as a pipeline runs it.
@Suite struct StaleSmoothingTests {
    let graph = smallGraph()
    let chunkRows = 70
    var chunks: [Range<Int>] { stride(from: 0, to: graph.nodeCount, by: chunkRows).map { $0..<min($0 + chunkRows, graph.nodeCount) } }

    func stage(momentum: Float, gradients: GNNStage.StaleGradients = .deferred) -> GNNStage {
        var c = config(.gcn, layers: 4, graph: graph)
        c.dropout = 0.5
        let stage = GNNStage(config: c, graph: graph, layers: 0..<4)
        stage.staleGradients = gradients
        stage.staleMomentum = momentum
        return stage
    }

    /// The body of a training epoch begun by the caller: chunks forward in order (later chunks'
    /// rows are historical), backward in reverse, an Adam step. One chunk when not `pipelined`.
    @discardableResult
    func train(_ stage: GNNStage, pipelined: Bool = true) -> Double {
        let n = graph.nodeCount, trainCount = graph.nodes(.train).count
        let order = pipelined ? chunks : [0..<n]
        let chunkOf = (0..<n).map { Int32(pipelined ? $0 / chunkRows : 0) }
        var loss = 0.0
        for rows in order {
            stage.forward(rows: rows)
            loss += stage.loss(rows: rows, trainCount: trainCount).loss
        }
        for (position, rows) in order.enumerated().reversed() {
            chunkOf.withUnsafeBufferPointer { stage.backward(rows: rows, chunkOf: $0.baseAddress, chunk: Int32(position)) }
        }
        stage.step()
        return loss
    }

    /// Every layer's node-indexed rows that later chunks read (or the gradient rows), copied out.
    func rows(_ stage: GNNStage, gradients: Bool = false) -> [[Float]] {
        let all = (0..<Int32(graph.nodeCount)).map { $0 }
        return stage.layers.map { l in
            var values = [Float](repeating: 0, count: graph.nodeCount * stage.config.aggregationWidth(of: l))
            values.withUnsafeMutableBufferPointer { v in
                if gradients {
                    stage.copyAggregationGradient(l, rows: all, into: v.baseAddress!)
                } else {
                    stage.copyAggregationRows(l, rows: all, into: v.baseAddress!)
                }
            }
            return values
        }
    }

    func average(_ m: Float, _ older: [[Float]], _ newer: [[Float]]) -> [[Float]] {
        zip(older, newer).map { zip($0, $1).map { m * $0 + (1 - m) * $1 } }
    }

    @Test(arguments: [GNNStage.StaleGradients.deferred, .dropped])
    func momentumZeroTrainsAsBeforeBitForBit(gradients: GNNStage.StaleGradients) {
        // As the pipeline ran before smoothing existed: no momentum, epochs not marked pipelined.
        let before = stage(momentum: 0, gradients: gradients), now = stage(momentum: 0, gradients: gradients)
        for e in 0..<6 {
            before.beginEpoch(e, training: true)
            now.beginEpoch(e, training: true, pipelined: true)
            #expect(train(now) == train(before), "epoch \(e)")
        }
        #expect(now.parameters == before.parameters)
    }

    @Test func historicalRowsAndDeferredGradientsBecomeMovingAverages() {
        let m: Float = 0.9
        let plain = stage(momentum: 0), smoothed = stage(momentum: m)
        for stage in [plain, smoothed] { stage.beginEpoch(0, training: true, pipelined: true) }
        #expect(train(smoothed) == train(plain))
        let rows0 = rows(plain)
        // Epoch 0 had no history; the averages start from the rows and gradients it left.
        for stage in [plain, smoothed] { stage.beginEpoch(1, training: true, pipelined: true) }
        let gradients0 = rows(plain, gradients: true)
        #expect(rows(smoothed) == rows0 && rows(smoothed, gradients: true) == gradients0)
        #expect(train(smoothed) == train(plain))
        let rows1 = rows(plain)
        for stage in [plain, smoothed] { stage.beginEpoch(2, training: true, pipelined: true) }
        let gradients1 = rows(plain, gradients: true)
        // Dropout differs by epoch, so the two epochs left different values to average.
        #expect(rows0 != rows1 && gradients0 != gradients1)
        #expect(rows(smoothed) == average(m, rows0, rows1))
        #expect(rows(smoothed, gradients: true) == average(m, gradients0, gradients1))
    }

    @Test func anExactEpochRestartsTheAverages() {
        let exact = stage(momentum: 0.9), pipelined = stage(momentum: 0.9)
        for e in 0..<3 {
            for stage in [exact, pipelined] {
                stage.beginEpoch(e, training: true, pipelined: true)
                train(stage)
            }
        }
        exact.beginEpoch(3, training: true)
        train(exact, pipelined: false)
        pipelined.beginEpoch(3, training: true, pipelined: true)
        train(pipelined)
        let left = (exact: rows(exact), pipelined: rows(pipelined))
        for stage in [exact, pipelined] { stage.beginEpoch(4, training: true, pipelined: true) }
        #expect(rows(exact) == left.exact)
        #expect(rows(pipelined) != left.pipelined)
    }
}

@Suite struct GraphDataTests {
    @Test func normalizedAdjacencyIsSymmetricWithSelfLoops() {
        let a = CSRMatrix.normalizedAdjacency(nodeCount: 3, edges: [(0, 1), (1, 0), (1, 2), (2, 2)])
        // Degrees with self loops: 2, 3, 2.
        #expect(a.rowOffsets == [0, 2, 5, 7])
        #expect(a.columns == [0, 1, 0, 1, 2, 1, 2])
        #expect(abs(a.values[1] - 1 / (2 * 3 as Float).squareRoot()) < 1e-7)
        #expect(abs(a.values[3] - 1 / 3) < 1e-7)
    }

    @Test func contextualSBMIsDeterministicAndHomophilous() {
        var generator = ContextualSBM()
        generator.nodeCount = 2000
        generator.seed = 9
        let a = generator.generate(), b = generator.generate()
        #expect(a.adjacency == b.adjacency && a.features == b.features && a.labels == b.labels)
        var same = 0, total = 0
        for i in 0..<a.nodeCount {
            for k in a.adjacency.rowOffsets[i]..<a.adjacency.rowOffsets[i + 1] where Int(a.adjacency.columns[k]) != i {
                total += 1
                if a.labels[i] == a.labels[Int(a.adjacency.columns[k])] { same += 1 }
            }
        }
        #expect(abs(Double(same) / Double(total) - 0.8) < 0.03)
        #expect(abs(a.averageDegree - 20) < 1)
    }

    @Test func permutingKeepsTheGraph() {
        let graph = smallGraph(nodes: 50)
        let order = (0..<Int32(50)).reversed().map { $0 }
        let permuted = graph.permuted(by: Array(order))
        #expect(permuted.labels == graph.labels.reversed())
        #expect(permuted.adjacency.nonzeroCount == graph.adjacency.nonzeroCount)
        let back = permuted.permuted(by: Array(order))
        #expect(back.adjacency == graph.adjacency && back.features == graph.features)
    }

    @Test func metisCutsFewerEdgesThanIds() {
        var generator = ContextualSBM()
        generator.nodeCount = 3000
        let graph = generator.generate()
        func cut(_ parts: [Int32]) -> Int {
            var cut = 0
            for i in 0..<graph.nodeCount {
                for k in graph.adjacency.rowOffsets[i]..<graph.adjacency.rowOffsets[i + 1]
                where parts[i] != parts[Int(graph.adjacency.columns[k])] { cut += 1 }
            }
            return cut
        }
        let metis = GraphPartitioner.metis.partition(graph, parts: 4, seed: 1)
        let ids = GraphPartitioner.contiguous.partition(graph, parts: 4, seed: 1)
        #expect(Set(metis) == [0, 1, 2, 3])
        #expect(cut(metis) * 2 < cut(ids), "metis cut \(cut(metis)), contiguous \(cut(ids))")
    }
}

@Suite struct LINQSReaderTests {
    /// Writes a tiny data set and reads it with LINQSReader; the files are removed afterwards.
    func read(content: String, cites: String, split: String? = nil) throws -> Graph {
        try withTemporaryDirectory("linqs") { root in
            let directory = root.appendingPathComponent("tiny")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try content.write(to: directory.appendingPathComponent("tiny.content"), atomically: true, encoding: .utf8)
            try cites.write(to: directory.appendingPathComponent("tiny.cites"), atomically: true, encoding: .utf8)
            if let split { try split.write(to: directory.appendingPathComponent("tiny.split"), atomically: true, encoding: .utf8) }
            return try LINQSReader.read(directory: directory.path).graph
        }
    }

    let content = "a\t1\t0\tx\nb\t0\t1\ty\nc\t1\t1\tx\n"

    @Test func readsNodesEdgesAndSplit() throws {
        let graph = try read(content: content, cites: "a\tb\nb\tc\n", split: "a\ttrain\nb\tval\nc\ttest\n")
        #expect(graph.nodeCount == 3 && graph.edgeCount == 2 && graph.featureCount == 2 && graph.classCount == 2)
        #expect(graph.labels == [0, 1, 0])
        #expect(graph.roles == [.train, .validation, .test])
        #expect(graph.features[0...1] == [1, 0])
    }

    @Test(arguments: [
        ("a\t1\t0\tx\nb\t0\tx\n", "a\tb\n", nil, "tiny.content:2: feature row has 1 values, earlier rows have 2"),
        ("a\t1\t0\tx\na\t0\t1\tx\n", "a\tb\n", nil, "tiny.content:2: duplicate node id 'a'"),
        ("a\t1\tq\tx\n", "", nil, "tiny.content:1: feature 2 is 'q', not a number"),
        ("a\t1\t0\tx\nb\t0\t1\ty\n", "a\tb\nb\tz\n", nil, "tiny.cites:2: unknown node 'z'"),
        ("a\t1\t0\tx\nb\t0\t1\ty\n", "a\tb\n", "a\ttrain\nq\ttest\n", "tiny.split:2: unknown node 'q'"),
        ("a\t1\t0\tx\nb\t0\t1\ty\n", "a\tb\n", "a\tholdout\n", "tiny.split:1: role 'holdout' is not train, val or test"),
    ] as [(String, String, String?, String)])
    func badInputNamesFileAndLine(content: String, cites: String, split: String?, message: String) throws {
        do {
            _ = try read(content: content, cites: cites, split: split)
            Issue.record("expected an error: \(message)")
        } catch {
            #expect("\(error)".hasSuffix(message), "\(error)")
        }
    }
}

/// Kipf & Welling's setting on the real Cora split (skipped in a bare clone without ../shared).
@Suite struct CoraTests {
    static let cora = SharedDatasets.directory("cora")

    @Test(.enabled(if: cora != nil, "needs ../shared/datasets/cora beside the clone; absent here"))
    func twoLayerGCNReachesThePaperAccuracyOverFiveSeeds() throws {
        let graph = try LINQSReader.read(directory: Self.cora!).graph
        #expect(graph.nodeCount == 2708 && graph.edgeCount == 5278 && graph.featureCount == 1433 && graph.classCount == 7)
        #expect(graph.nodes(.train).count == 140 && graph.nodes(.validation).count == 500 && graph.nodes(.test).count == 1000)
        var accuracies: [Double] = []
        for seed in 0..<5 as Range<UInt64> {
            var config = GNNConfig(inputWidth: graph.featureCount, classes: graph.classCount)
            config.seed = seed
            let trainer = try GNNTrainer(config: config, graph: graph)
            for epoch in 0..<200 { _ = trainer.trainEpoch(epoch) }
            accuracies.append(trainer.evaluate(200).test)
        }
        let mean = accuracies.reduce(0, +) / 5
        #expect(mean >= 0.805, "mean test accuracy \(mean) over seeds: \(accuracies)")
    }
}
