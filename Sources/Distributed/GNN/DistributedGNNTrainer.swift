import Foundation
import Models

/// Trains one GNN across ranks by `GNNLayout`: each rank runs a `GNNStage` of consecutive layers
/// over one vertex partition; chunks flow stage to stage with non-blocking point-to-point (the
/// GNNPipe layer pipeline), partitions of a stage swap halo rows at every aggregating layer
/// (graph parallelism), and partitions of a stage average their gradients.
public final class DistributedGNNTrainer: GNNEpochTraining {
    /// How the chunks of an epoch are ordered.
    public enum ChunkOrder: String, CaseIterable, Codable, Sendable { case fixed, random }

    public let layout: GNNLayout
    public let stage: GNNStage
    public let world: Communicator
    /// The ranks of this rank's stage, one per partition.
    let stageGroup: Communicator
    public let stageIndex: Int
    public let partitionIndex: Int
    public var chunkOrder = ChunkOrder.fixed
    /// Epochs at the start that run exactly (one chunk per partition, no historical values).
    public var warmupEpochs = 0
    /// Every this many epochs, from the first, an exact epoch refreshes the historical values
    /// (bounded staleness); 0 never.
    public var refreshEvery = 0
    public let trace: PhaseTrace

    /// This rank's partition and its halo; the stage's rows.
    private let part: PartitionGraph
    /// The chunk of every row of `part`.
    private let chunkOfRow: [Int32]
    /// The rows of each of this partition's chunks.
    private let chunkRows: [Range<Int>]
    private let halo: HaloPlan
    private let trainCount: Int
    private var chunkPosition: [Int32]
    private let seed: UInt64

    /// Builds the layout on rank 0 (partitioning is deterministic, but one source is safer),
    /// broadcasts the node order, and builds this rank's stage.
    public init(config: GNNConfig, graph original: Graph, world: Communicator, stages: Int, chunks: Int,
                partitioner: GraphPartitioner, staleGradients: GNNStage.StaleGradients, staleMomentum: Float = 0,
                trace: PhaseTrace = PhaseTrace(enabled: false)) throws {
        try config.validate()
        guard world.size % stages == 0 else {
            throw ConfigError("\(world.size) ranks do not split into \(stages) stages of equal size")
        }
        guard staleMomentum >= 0 && staleMomentum < 1 else { throw ConfigError("a stale momentum must be in 0..<1, not \(staleMomentum)") }
        let partitions = world.size / stages
        let layout = try GNNLayout(config: config, graph: original, stages: stages, partitions: partitions, chunks: chunks,
                                   partitioner: partitioner, seed: config.seed)
        let order = try world.broadcast(layout.order, root: 0)
        guard order == layout.order else {
            throw ConfigError("ranks computed different partitions; rank \(world.rank) disagrees with rank 0")
        }
        self.layout = layout
        self.world = world
        self.seed = config.seed
        stageIndex = layout.stage(ofRank: world.rank)
        partitionIndex = layout.partition(ofRank: world.rank)
        stageGroup = try world.split(color: stageIndex, key: partitionIndex)!
        let graph = original.permuted(by: layout.order)
        part = PartitionGraph(graph, owning: layout.partitionRanges[partitionIndex])
        chunkOfRow = part.globalIDs.map { layout.chunkOf[Int($0)] }
        let start = layout.partitionRanges[partitionIndex].lowerBound
        chunkRows = layout.chunkRanges[partitionIndex].map { ($0.lowerBound - start)..<($0.upperBound - start) }
        stage = GNNStage(config: config, graph: part.graph, layers: layout.stageLayers[stageIndex],
                         originalIDs: part.globalIDs.map { layout.order[Int($0)] })
        stage.staleGradients = staleGradients
        stage.staleMomentum = staleMomentum
        halo = HaloPlan(layout: layout, graph: graph, partition: partitionIndex, part: part)
        trainCount = graph.roles.filter { $0 == .train }.count
        historicalNeighbourShare = layout.historicalNeighbourShare(of: graph)
        chunkPosition = (0..<Int32(chunks)).map { $0 }
        self.trace = trace
    }

    /// Rows this partition reads from the other partitions of its stage.
    public var haloRows: Int { halo.haloSize }

    /// The share of neighbours that pipelined epochs read from last epoch (`GNNLayout.historicalNeighbourShare`).
    public let historicalNeighbourShare: Double

    /// Bytes this rank has sent so far, pipeline messages and stage exchanges together.
    var bytesSent: UInt64 { world.traffic().total.bytesSent + stageGroup.traffic().total.bytesSent }

    private var previousRank: Int? { stageIndex > 0 ? layout.rank(stage: stageIndex - 1, partition: partitionIndex) : nil }
    private var nextRank: Int? { stageIndex < layout.stages - 1 ? layout.rank(stage: stageIndex + 1, partition: partitionIndex) : nil }
    /// This partition's own rows of the stage.
    private var ownRows: Range<Int> { 0..<part.ownCount }

    // MARK: - Training

    /// One epoch: forward of every chunk through the pipeline, backward in reverse order,
    /// gradient averaging within the stage, an Adam step. Returns loss and training accuracy
    /// over all ranks, and the bytes all ranks sent for the step (on every rank).
    public func trainEpoch(_ epoch: Int) throws -> (loss: Double, accuracy: Double, bytesSent: UInt64) {
        let before = bytesSent
        let exact = isExact(epoch)
        trace.step = epoch + 1
        let order = chunkSchedule(epoch, exact: exact)
        stage.beginEpoch(epoch, training: true, pipelined: !exact && layout.chunks > 1)
        dropRemoteStaleGradients()
        var sends = RequestGroup()
        var outgoing: [[Float]] = []
        var loss = 0.0, correct = 0, counted = 0
        for (position, rows) in order.enumerated() {
            try receiveInput(rows: rows, tag: position, epochTag: epoch)
            for l in stage.layers {
                trace.phase("forward", .compute, layer: l, chunk: position) { stage.prepare(l, rows: rows) }
                if layout.partitions > 1 && stage.config.aggregates(l) {
                    try trace.phase("halo", .communication, layer: l, chunk: position) { try exchangeHalo(l, chunks: chunks(at: position, exact: exact)) }
                }
                trace.phase("forward", .compute, layer: l, chunk: position) { stage.compute(l, rows: rows) }
            }
            if let next = nextRank {
                outgoing.append(try send(rows: rows, width: stage.outputWidth, to: next, tag: position, in: &sends) { buffer in
                    stage.copyOutput(rows: rows, into: buffer)
                })
            } else {
                let result = trace.phase("loss", .compute, chunk: position) { stage.loss(rows: rows, trainCount: trainCount) }
                loss += result.loss
                correct += result.correct
                counted += result.counted
            }
        }
        for (position, rows) in order.enumerated().reversed() {
            if let next = nextRank {
                try trace.phase("wait gradient", .wait, chunk: position) {
                    try receive(rows: rows, width: stage.outputWidth, from: next, tag: 1_000_000 + position) { buffer in
                        stage.setOutputGradient(rows: rows, from: buffer)
                    }
                }
            }
            for l in stage.layers.reversed() {
                rowPositions.withUnsafeBufferPointer { positions in
                    trace.phase("backward", .compute, layer: l, chunk: position) {
                        stage.backward(l, rows: rows, chunkOf: exact ? nil : positions.baseAddress, chunk: Int32(position))
                    }
                }
                if layout.partitions > 1 && stage.config.aggregates(l) {
                    try trace.phase("halo gradient", .communication, layer: l, chunk: position) {
                        try exchangeHaloGradient(l, chunks: chunks(at: position, exact: exact), position: position, exact: exact)
                    }
                }
                trace.phase("backward", .compute, layer: l, chunk: position) { stage.finish(l, rows: rows) }
            }
            if let previous = previousRank {
                outgoing.append(try send(rows: rows, width: stage.inputWidth, to: previous, tag: 1_000_000 + position, in: &sends) { buffer in
                    stage.copyInputGradient(rows: rows, into: buffer)
                })
            }
        }
        try trace.phase("wait sends", .wait) { try sends.waitAll() }
        withExtendedLifetime(outgoing) {}
        if layout.partitions > 1 {
            try trace.phase("allreduce gradients", .communication) {
                try stage.withGradients { gradients in try stageGroup.allreduce(&gradients, .sum) }
            }
        }
        trace.phase("step", .update) { stage.step() }
        let sent = bytesSent - before
        let totals = try world.allreduce([loss, Double(correct), Double(counted), Double(sent)], .sum)
        return (totals[0], totals[1] / max(totals[2], 1), UInt64(totals[3]))
    }

    /// A training epoch timed from a barrier to its slowest rank, then an evaluation.
    public func runEpoch(_ epoch: Int) throws -> GNNEpochReport {
        try world.barrier()
        let start = ContinuousClock.now
        let (loss, trainAccuracy, sent) = try trainEpoch(epoch)
        let seconds = try world.allreduce((ContinuousClock.now - start).seconds, .max)
        let (validation, test) = try evaluate(epoch)
        return GNNEpochReport(epoch: epoch + 1, loss: loss, trainAccuracy: trainAccuracy, validationAccuracy: validation,
                              testAccuracy: test, seconds: seconds, bytesSent: sent)
    }

    /// True for a warm-up epoch and for every `refreshEvery`-th: one chunk per partition.
    private func isExact(_ epoch: Int) -> Bool {
        epoch < warmupEpochs || (refreshEvery > 0 && epoch % refreshEvery == 0)
    }

    // MARK: - Evaluation

    /// Accuracy on validation and test nodes by an exact pass (whole partitions, no historical
    /// values, no dropout), on every rank.
    public func evaluate(_ epoch: Int) throws -> (validation: Double, test: Double) {
        stage.beginEpoch(epoch, training: false)
        let rows = ownRows
        var sends = RequestGroup()
        try receiveInput(rows: rows, tag: 2_000_000, epochTag: epoch)
        for l in stage.layers {
            stage.prepare(l, rows: rows)
            if layout.partitions > 1 && stage.config.aggregates(l) { try exchangeHalo(l, chunks: Array(0..<layout.chunks)) }
            stage.compute(l, rows: rows)
        }
        var counts: [Double] = [0, 0, 0, 0]
        var outgoing: [Float] = []
        if let next = nextRank {
            outgoing = try send(rows: rows, width: stage.outputWidth, to: next, tag: 2_000_000, in: &sends) { buffer in
                stage.copyOutput(rows: rows, into: buffer)
            }
        } else {
            let validation = stage.accuracy(rows: rows, role: .validation), test = stage.accuracy(rows: rows, role: .test)
            counts = [Double(validation.correct), Double(validation.counted), Double(test.correct), Double(test.counted)]
        }
        try sends.waitAll()
        withExtendedLifetime(outgoing) {}
        let totals = try world.allreduce(counts, .sum)
        return (totals[0] / max(totals[1], 1), totals[2] / max(totals[3], 1))
    }

    // MARK: - Pipeline messages

    /// This epoch's chunks in processing order, as node ranges of this rank's partition; one
    /// range for the whole partition in an exact epoch.
    private func chunkSchedule(_ epoch: Int, exact: Bool) -> [Range<Int>] {
        if exact { return [ownRows] }
        var order = Array(0..<layout.chunks)
        if chunkOrder == .random {
            var rng = SplitMix64(seed: seed, stream: "chunk-order", index: UInt64(epoch))
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(below: i + 1)) }
        }
        for (position, chunk) in order.enumerated() { chunkPosition[chunk] = Int32(position) }
        scheduledChunks = order
        if rowPositions.count != chunkOfRow.count { rowPositions = [Int32](repeating: 0, count: chunkOfRow.count) }
        for (i, chunk) in chunkOfRow.enumerated() { rowPositions[i] = chunkPosition[Int(chunk)] }
        return order.map { chunkRows[$0] }
    }

    private var scheduledChunks: [Int] = []
    /// The position in this epoch's order of every node's chunk.
    private var rowPositions: [Int32] = []

    /// Chunks (by id) processed at `position` of this epoch: one, or all in an exact epoch.
    private func chunks(at position: Int, exact: Bool) -> [Int] { exact ? Array(0..<layout.chunks) : [scheduledChunks[position]] }

    private func receiveInput(rows: Range<Int>, tag: Int, epochTag: Int) throws {
        guard let previous = previousRank else { return }
        try trace.phase("wait input", .wait, chunk: tag) {
            try receive(rows: rows, width: stage.inputWidth, from: previous, tag: tag) { buffer in
                stage.setInput(rows: rows, from: buffer)
            }
        }
    }

    /// Packs `rows` with `fill` and starts sending them; the returned array must outlive the send.
    private func send(rows: Range<Int>, width: Int, to rank: Int, tag: Int, in group: inout RequestGroup,
                      fill: (UnsafeMutablePointer<Float>) -> Void) throws -> [Float] {
        var buffer = [Float](repeating: 0, count: rows.count * width)
        buffer.withUnsafeMutableBufferPointer { fill($0.baseAddress!) }
        try buffer.withUnsafeBufferPointer { group.append(try world.isend($0, to: rank, tag: tag)) }
        return buffer
    }

    private func receive(rows: Range<Int>, width: Int, from rank: Int, tag: Int, use: (UnsafePointer<Float>) -> Void) throws {
        var buffer = [Float](repeating: 0, count: rows.count * width)
        try buffer.withUnsafeMutableBufferPointer { b in
            let status = try world.receive(into: b, from: rank, tag: tag)
            guard status.count == b.count else {
                throw ConfigError("rank \(world.rank): expected \(b.count) values from rank \(rank), got \(status.count)")
            }
        }
        buffer.withUnsafeBufferPointer { use($0.baseAddress!) }
    }

    // MARK: - Halo exchange

    /// Sends the rows of `chunks` that other partitions read at layer `l` and receives theirs.
    private func exchangeHalo(_ l: Int, chunks: [Int]) throws {
        let sendLists = (0..<layout.partitions).map { q in chunks.flatMap { halo.send[$0][q] } }
        let receiveLists = (0..<layout.partitions).map { q in chunks.flatMap { halo.receive[$0][q] } }
        try exchange(width: stage.config.aggregationWidth(of: l), sending: sendLists, receiving: receiveLists,
                     pack: { stage.copyAggregationRows(l, rows: $0, into: $1) },
                     unpack: { stage.setAggregationRows(l, rows: $0, from: $1) })
    }

    /// Sends the gradient this partition scattered into other partitions' rows at layer `l`
    /// to their owners, who add it. Rows whose chunk comes later are stale and stay out.
    private func exchangeHaloGradient(_ l: Int, chunks: [Int], position: Int, exact: Bool) throws {
        let current: (Int32) -> Bool = { exact || self.chunkPosition[Int(self.chunkOfRow[Int($0)])] <= Int32(position) }
        let sendLists = (0..<layout.partitions).map { q in chunks.flatMap { halo.gradientSend[$0][q] }.filter(current) }
        let receiveLists = (0..<layout.partitions).map { q in chunks.flatMap { halo.gradientReceive[$0][q] }.filter(current) }
        try exchange(width: stage.config.aggregationWidth(of: l), sending: sendLists, receiving: receiveLists,
                     pack: { stage.copyAggregationGradient(l, rows: $0, into: $1) },
                     unpack: { stage.addAggregationGradient(l, rows: $0, from: $1) })
        for list in sendLists { stage.clearAggregationGradient(l, rows: list) }
    }

    /// One alltoallv within the stage: `pack` writes the rows listed for each partition one after
    /// another, `unpack` takes the rows each partition sent for the rows listed from it.
    private func exchange(width: Int, sending: [[Int32]], receiving: [[Int32]],
                          pack: (_ rows: [Int32], _ into: UnsafeMutablePointer<Float>) -> Void,
                          unpack: (_ rows: [Int32], _ from: UnsafePointer<Float>) -> Void) throws {
        let sendCounts = sending.map { $0.count * width }
        var packed = [Float](repeating: 0, count: sendCounts.reduce(0, +))
        packed.withUnsafeMutableBufferPointer { p in
            var offset = 0
            for list in sending where !list.isEmpty {
                pack(list, p.baseAddress! + offset)
                offset += list.count * width
            }
        }
        let received = try stageGroup.alltoallv(packed, sendCounts: sendCounts)
        for (q, list) in receiving.enumerated() where received.chunks[q].count != list.count * width {
            throw ConfigError("rank \(world.rank): partition \(q) sent \(received.chunks[q].count) halo values, \(list.count * width) expected")
        }
        received.values.withUnsafeBufferPointer { r in
            for (q, list) in receiving.enumerated() where !list.isEmpty { unpack(list, r.baseAddress! + received.chunks[q].lowerBound) }
        }
    }

    /// In graph partitions, stale gradients owed to other partitions are dropped: only a
    /// partition's own rows carry deferred gradients into the next epoch.
    private func dropRemoteStaleGradients() {
        guard layout.partitions > 1 else { return }
        stage.dropStaleGradients(outside: ownRows)
    }
}
