import Models

/// One DLRM trained across ranks: embedding shards live on the ranks a plan gives them (model
/// parallel, fed and read through all-to-all), the MLPs are replicated (data parallel, their
/// gradients summed by one allreduce). Each rank holds `globalBatch / size` consecutive samples
/// of every global batch.
///
/// Gradient scaling: every rank divides its loss by the global batch size, so the summed MLP
/// gradients and the embedding gradients each owner receives are exactly the single-rank
/// gradients of the global batch. (Averaging per-rank means, as the reference implementation
/// does, would scale the embedding gradients by 1/ranks.)
public final class ShardedDLRM {
    public let world: Communicator
    public let config: DLRMConfig
    /// Per rank, the shards (table and column range) it owns.
    public let shardsByRank: [[EmbeddingShardSpec]]
    /// The MLPs and this rank's embedding shards.
    public let model: DLRM
    public var embeddings: EmbeddingBagCollection { model.embeddings }
    /// Time spent in the all-to-alls and the gradient allreduce.
    public private(set) var communicationTimer = KernelTimer()
    /// This rank's phases of every step, when tracing.
    public let trace: PhaseTrace
    /// Sketches of this rank's lookups, when the trainer measures itself.
    public var monitor: LookupMonitor?

    /// Per rank, the tables it looks up, ascending: the features of the bags it receives.
    private let tablesByRank: [[Int]]
    /// Per rank, the floats per sample of its embedding output.
    private let outputWidths: [Int]
    /// Per rank, per shard: the shard's first column in a sample's pooled vector.
    private let pooledOffsets: [[Int]]
    private let pooledWidth: Int
    /// One rank holding every table whole, in order: its forward output is the pooled layout
    /// and nothing is exchanged.
    private let holdsWholeModel: Bool

    private var ownerOutput: [Float] = []
    private var ownerGradient: [Float] = []
    private var received: [Float] = []
    private var pooled: [Float] = []
    private var pooledGradient: [Float] = []

    /// Builds this rank's shards of `shardsByRank` (one entry per rank of `world`; every column
    /// of every table owned exactly once) and replicas of the MLPs, all from `seed`: the same
    /// values a single-rank model of `config` starts from.
    public init(world: Communicator, config: DLRMConfig, shardsByRank: [[EmbeddingShardSpec]],
                embeddingOptimizer: EmbeddingOptimizer = .sgd, denseOptimizer: DenseOptimizer.Kind = .sgd, seed: UInt64,
                trace: Bool = false) throws(ConfigError) {
        guard shardsByRank.count == world.size else {
            throw ConfigError("the placement names \(shardsByRank.count) ranks; the job has \(world.size)")
        }
        for (t, table) in config.tables.enumerated() {
            var owned = [Int](repeating: 0, count: table.dim)
            for shard in shardsByRank.joined() where shard.table == t {
                guard shard.columns.lowerBound >= 0, shard.columns.upperBound <= table.dim else {
                    throw ConfigError("table \(table.name): shard columns \(shard.columns) outside its \(table.dim) columns")
                }
                for c in shard.columns { owned[c] += 1 }
            }
            if let c = owned.firstIndex(where: { $0 != 1 }) {
                throw ConfigError("table \(table.name): column \(c) is owned by \(owned[c]) shards, not exactly one")
            }
        }
        if let shard = shardsByRank.joined().first(where: { !config.tables.indices.contains($0.table) }) {
            throw ConfigError("a shard names table \(shard.table); the model has \(config.tables.count)")
        }
        self.world = world
        self.trace = PhaseTrace(enabled: trace)
        self.config = config
        self.shardsByRank = shardsByRank
        tablesByRank = shardsByRank.map { Array(Set($0.map(\.table))).sorted() }
        outputWidths = shardsByRank.map { $0.reduce(0) { $0 + $1.columns.count } }
        var tableOffsets: [Int] = [], running = 0
        for table in config.tables { tableOffsets.append(running); running += table.dim }
        pooledWidth = running
        pooledOffsets = shardsByRank.map { shards in shards.map { tableOffsets[$0.table] + $0.columns.lowerBound } }
        holdsWholeModel = world.size == 1 && shardsByRank[0] == config.tables.indices.map { EmbeddingShardSpec(table: $0, columns: 0..<config.tables[$0].dim) }
        let local = EmbeddingBagCollection(tables: config.tables, shards: shardsByRank[world.rank], features: tablesByRank[world.rank],
                                           optimizer: embeddingOptimizer, seed: seed)
        model = DLRM(config: config, embeddingOptimizer: embeddingOptimizer, denseOptimizer: denseOptimizer, seed: seed, embeddings: local)
    }

    /// Seconds this rank spent since the last reset in its embedding kernels, in exchanges
    /// and allreduces (waiting for slower ranks included), and in the MLPs and interaction.
    public struct PhaseSeconds: Sendable {
        public var embedding: Double
        public var communication: Double
        public var dense: Double
    }

    /// The tables whose first columns this rank owns: it counts their rows for the monitor.
    public var countedTables: Set<Int> {
        Set(shardsByRank[world.rank].filter { $0.columns.lowerBound == 0 }.map(\.table))
    }

    public var phaseSeconds: PhaseSeconds {
        PhaseSeconds(embedding: embeddings.timer.seconds, communication: communicationTimer.seconds,
                     dense: model.mlpTimer.seconds + model.interactionTimer.seconds)
    }

    public func resetPhaseSeconds() {
        embeddings.timer.reset()
        communicationTimer.reset()
        model.mlpTimer.reset()
        model.interactionTimer.reset()
    }

    // MARK: - Steps

    /// One training step on this rank's `local` samples of a global batch of `local.count ×
    /// size` samples. Returns the global batch's mean loss (on every rank).
    @discardableResult
    public func trainStep(_ local: ClickBatch, learningRate: Float) throws -> Double {
        let rows = local.count, global = rows * world.size
        let bags = try local.dense.withUnsafeBufferPointer { dense in
            try lookUp(local) { trace.phase("bottom MLP") { model.forwardBottom(dense: dense.baseAddress!, rows: rows) } }
        }
        model.parameters.zeroGradients()
        resize(&pooledGradient, rows * pooledWidth)
        var loss = local.dense.withUnsafeBufferPointer { dense in
            local.labels.withUnsafeBufferPointer { labels in
                pooled.withUnsafeBufferPointer { pooled in
                    pooledGradient.withUnsafeMutableBufferPointer { gradient in
                        trace.phase("interaction, top MLP, backward") {
                            model.forwardTop(pooled: pooled.baseAddress!, rows: rows)
                            return model.backward(dense: dense.baseAddress!, pooled: pooled.baseAddress!, labels: labels.baseAddress!,
                                                  rows: rows, divisor: global, pooledGradient: gradient.baseAddress!)
                        }
                    }
                }
            }
        }
        if !holdsWholeModel { try trace.phase("gradient all-to-all") { try returnGradients(rows: rows) } }
        try trace.phase("allreduce MLP gradients") {
            try communicationTimer.measure {
                try world.allreduce(UnsafeMutableBufferPointer(start: model.parameters.gradients, count: model.parameters.count), .sum)
                loss = try world.allreduce(loss, .sum)
            }
        }
        trace.phase("MLP update") { model.denseOptimizer.update(model.parameters, learningRate: learningRate) }
        trace.phase("embedding backward and update") {
            (holdsWholeModel ? pooledGradient : ownerGradient).withUnsafeBufferPointer { gradient in
                embeddings.backwardAndUpdate(bags, outputGradient: gradient.baseAddress!, learningRate: learningRate)
            }
        }
        return loss
    }

    /// Logits of this rank's `local` samples (every rank must call it, with equal counts).
    /// Evaluation lookups are not measured by the monitor.
    public func predict(_ local: ClickBatch) throws -> [Float] {
        let measuring = monitor
        monitor = nil
        defer { monitor = measuring }
        try local.dense.withUnsafeBufferPointer { dense in
            _ = try lookUp(local) { model.forwardBottom(dense: dense.baseAddress!, rows: local.count) }
        }
        pooled.withUnsafeBufferPointer { model.forwardTop(pooled: $0.baseAddress!, rows: local.count) }
        return Array(UnsafeBufferPointer(start: model.logits, count: local.count))
    }

    // MARK: - Exchanges

    /// Sends every owner the bags of its tables for the local samples, runs this rank's
    /// embedding forward over the whole global batch, and brings each sample's pooled vector
    /// back to its rank (into `pooled`), running `overlapped` (work that needs no embeddings)
    /// while the pooled vectors are in flight. Returns the global bags this rank looked up.
    private func lookUp(_ local: ClickBatch, overlapped: () -> Void) throws -> BagBatch {
        let rows = local.count, ranks = world.size
        if holdsWholeModel {
            resize(&pooled, rows * pooledWidth)
            trace.phase("embedding forward") { pooled.withUnsafeMutableBufferPointer { embeddings.forward(local.bags, into: $0.baseAddress!) } }
            if let monitor {
                for t in 0..<local.bags.features {
                    monitor.count(local.bags.indices[Int(local.bags.offsets[t * rows])..<Int(local.bags.offsets[(t + 1) * rows])], table: t)
                }
            }
            overlapped()
            return local.bags
        }
        let bags = try trace.phase("input all-to-all") { try communicationTimer.measure { try exchangeBags(local.bags) } }
        let width = outputWidths[world.rank]
        resize(&ownerOutput, bags.batchSize * width)
        trace.phase("embedding forward") { ownerOutput.withUnsafeMutableBufferPointer { embeddings.forward(bags, into: $0.baseAddress!) } }
        // Owner rows r·rows ..< (r+1)·rows belong to rank r.
        let sendChunks = Chunks(counts: [Int](repeating: rows * width, count: ranks))
        let recvChunks = Chunks(counts: outputWidths.map { rows * $0 })
        resize(&received, recvChunks.extent)
        try ownerOutput.withUnsafeBufferPointer { send in
            try received.withUnsafeMutableBufferPointer { recv in
                let start = ContinuousClock.now
                let exchange = try world.ialltoallv(send, sendChunks, into: recv, recvChunks)
                let started = ContinuousClock.now
                overlapped()
                let resumed = ContinuousClock.now
                try exchange.wait()
                trace.record("wait output all-to-all", since: resumed)
                communicationTimer.add(started - start + (ContinuousClock.now - resumed))
            }
        }
        resize(&pooled, rows * pooledWidth)
        received.withUnsafeBufferPointer { source in
            pooled.withUnsafeMutableBufferPointer { target in
                scatterColumns(from: source.baseAddress!, chunks: recvChunks, rows: rows, into: target.baseAddress!, toPooled: true)
            }
        }
        return bags
    }

    /// Sends each owner the gradient of its columns of the local samples (into `ownerGradient`,
    /// global-batch rows in rank order, as the owner's forward output).
    private func returnGradients(rows: Int) throws {
        let width = outputWidths[world.rank]
        let sendChunks = Chunks(counts: outputWidths.map { rows * $0 })
        let recvChunks = Chunks(counts: [Int](repeating: rows * width, count: world.size))
        resize(&received, sendChunks.extent)
        pooledGradient.withUnsafeMutableBufferPointer { source in
            received.withUnsafeMutableBufferPointer { target in
                scatterColumns(from: source.baseAddress!, chunks: sendChunks, rows: rows, into: target.baseAddress!, toPooled: false)
            }
        }
        resize(&ownerGradient, rows * world.size * width)
        try communicationTimer.measure {
            try received.withUnsafeBufferPointer { send in
                try ownerGradient.withUnsafeMutableBufferPointer { recv in
                    try world.alltoallv(send, sendChunks, into: recv, recvChunks)
                }
            }
        }
    }

    /// Moves shard columns between owner blocks (per rank q, `rows` × outputWidths[q], at
    /// `chunks[q]`) and pooled vectors (`rows` × pooledWidth): into pooled when `toPooled`,
    /// out of it otherwise.
    private func scatterColumns(from source: UnsafePointer<Float>, chunks: Chunks, rows: Int,
                                into target: UnsafeMutablePointer<Float>, toPooled: Bool) {
        for (q, shards) in shardsByRank.enumerated() {
            let block = chunks.displacements[q], width = outputWidths[q]
            var column = 0
            for (k, shard) in shards.enumerated() {
                let count = shard.columns.count, pooledColumn = pooledOffsets[q][k]
                for sample in 0..<rows {
                    let blockAt = block + sample * width + column, pooledAt = sample * pooledWidth + pooledColumn
                    if toPooled {
                        (target + pooledAt).update(from: source + blockAt, count: count)
                    } else {
                        (target + blockAt).update(from: source + pooledAt, count: count)
                    }
                }
                column += count
            }
        }
    }

    /// The input all-to-all: each rank sends each owner, per table the owner looks up, the bag
    /// lengths of its samples and then their indices; the owner lays them out as one batch of
    /// every rank's samples in rank order. With a monitor, every request sent and served is
    /// sketched (and faults, if any, are injected between the two).
    private func exchangeBags(_ local: BagBatch) throws(MPIError) -> BagBatch {
        let rows = local.batchSize, ranks = world.size
        var send: [Int32] = []
        var sendCounts: [Int] = []
        for (destination, tables) in tablesByRank.enumerated() {
            let before = send.count
            send += repeatElement(0, count: tables.count * rows)
            for (k, t) in tables.enumerated() {
                if let monitor, monitor.faults != nil {
                    for sample in 0..<rows {
                        let start = send.count
                        monitor.send(local.indices[local.bag(feature: t, sample: sample)], table: t, sample: sample, to: destination, into: &send)
                        send[before + k * rows + sample] = Int32(send.count - start)
                    }
                } else {
                    for sample in 0..<rows { send[before + k * rows + sample] = Int32(local.bag(feature: t, sample: sample).count) }
                    let requests = local.indices[Int(local.offsets[t * rows])..<Int(local.offsets[(t + 1) * rows])]
                    monitor?.sent(requests, table: t)
                    send += requests
                }
            }
            sendCounts.append(send.count - before)
        }
        let parts = try world.alltoallv(send, sendCounts: sendCounts)
        let features = tablesByRank[world.rank].count
        var bags = BagBatch(batchSize: rows * ranks, features: features, reservingIndices: parts.values.count)
        var cursors = (0..<ranks).map { parts.chunks[$0].lowerBound + features * rows }
        for f in 0..<features {
            for r in 0..<ranks {
                let lengths = parts.chunks[r].lowerBound + f * rows, first = cursors[r]
                for sample in 0..<rows {
                    let length = Int(parts.values[lengths + sample])
                    bags.indices += parts.values[cursors[r]..<(cursors[r] + length)]
                    cursors[r] += length
                    bags.endBag()
                }
                monitor?.serve(parts.values[first..<cursors[r]], table: tablesByRank[world.rank][f], from: r)
            }
        }
        return bags
    }

    private func resize(_ buffer: inout [Float], _ count: Int) {
        if buffer.count != count { buffer = [Float](repeating: 0, count: count) }
    }
}
