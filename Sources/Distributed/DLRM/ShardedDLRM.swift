import Models

/// One DLRM trained across ranks: embedding shards live on the ranks a plan gives them (model
/// parallel, fed and read through all-to-all), the MLPs are replicated (data parallel, their
/// gradients summed by one allreduce). Each rank holds `globalBatch / size` consecutive samples
/// of every global batch.
///
/// A shard holds a block of a table: every row of a column range (table-wise, column-wise) or
/// a row range (row-wise, grid). A sender sends each owner only the indices in its rows; the
/// owner pools its partial sums, and the sample's rank adds the partial sums of a table's row
/// ranges. Replicated (data-parallel) tables are looked up locally on every rank; their sparse
/// gradients are summed over ranks each step, by a dense allreduce or a sparse allgather,
/// whichever moves fewer bytes that step, so every replica takes the same update.
///
/// Gradient scaling: every rank divides its loss by the global batch size, so the summed MLP
/// gradients and the embedding gradients each owner receives are exactly the single-rank
/// gradients of the global batch. (Averaging per-rank means, as the reference implementation
/// does, would scale the embedding gradients by 1/ranks.)
public final class ShardedDLRM {
    public let world: Communicator
    public let config: DLRMConfig
    /// Per rank, the shards (table, column range and row range) it owns.
    public let shardsByRank: [[EmbeddingShardSpec]]
    /// Tables every rank holds whole (data parallel), ascending.
    public let replicatedTables: [Int]
    /// The MLPs and this rank's embedding shards.
    public let model: DLRM
    public var embeddings: EmbeddingBagCollection { model.embeddings }
    /// This rank's replicas of the data-parallel tables, fed by the local batch (nil without any).
    public let replicas: EmbeddingBagCollection?
    /// Time spent in the all-to-alls and the gradient allreduce.
    public private(set) var communicationTimer = KernelTimer()
    /// This rank's phases of every step, when tracing.
    public let trace: PhaseTrace
    /// Sketches of this rank's lookups, when the trainer measures itself.
    public var monitor: LookupMonitor?

    /// Per rank, the lookups it receives (table and row range), ascending: the features of the
    /// bags it pools.
    private let inputsByRank: [[EmbeddingInput]]
    /// Per rank, the floats per sample of its embedding output.
    private let outputWidths: [Int]
    /// Per rank, per shard: the shard's first column in a sample's pooled vector.
    private let pooledOffsets: [[Int]]
    /// Per replica: its first column in a sample's pooled vector.
    private let replicaOffsets: [Int]
    private let pooledWidth: Int
    /// Some shard holds part of a table's rows: pooled vectors are sums of partial sums.
    private let hasRowSplits: Bool
    /// Per table, when every sharded table is placed whole: the rank that owns it and its first
    /// column in that rank's output (nil for a replicated table). The interaction then reads
    /// the vectors, and writes their gradients, in the exchanges' blocks: nothing is copied
    /// into the pooled layout and back.
    private let wholeTablePlaces: [(rank: Int, column: Int)?]?
    /// One rank holding every table whole, in order: its forward output is the pooled layout
    /// and nothing is exchanged.
    private let holdsWholeModel: Bool

    private var ownerOutput: [Float] = []
    private var ownerGradient: [Float] = []
    /// The other ranks' blocks of the pooled vectors, and of their gradients.
    private var received: [Float] = []
    private var gradientsToSend: [Float] = []
    private var pooled: [Float] = []
    private var pooledGradient: [Float] = []
    private var replicaOutput: [Float] = []
    /// The replicas' dense gradient sum, and the row indices 0, 1, ... of the largest one: kept between steps.
    private var replicaSum: [Float] = []
    private var everyRow: [Int32] = []
    /// The local bags of the last lookup, which the replicas' backward needs.
    private var localBags: BagBatch?

    /// Builds this rank's shards of `shardsByRank` (one entry per rank of `world`; every row
    /// and column of every table not in `replicatedTables` owned exactly once), replicas of
    /// `replicatedTables` and of the MLPs, all from `seed`: the same values a single-rank model
    /// of `config` starts from.
    public init(world: Communicator, config: DLRMConfig, shardsByRank: [[EmbeddingShardSpec]], replicatedTables: [Int] = [],
                embeddingOptimizer: EmbeddingOptimizer = .sgd, denseOptimizer: DenseOptimizer.Kind = .sgd, seed: UInt64,
                trace: PhaseTrace = PhaseTrace(enabled: false)) throws(ConfigError) {
        guard shardsByRank.count == world.size else {
            throw ConfigError("the placement names \(shardsByRank.count) ranks; the job has \(world.size)")
        }
        if let shard = shardsByRank.joined().first(where: { !config.tables.indices.contains($0.table) }) {
            throw ConfigError("a shard names table \(shard.table); the model has \(config.tables.count)")
        }
        if let t = replicatedTables.first(where: { !config.tables.indices.contains($0) }) {
            throw ConfigError("a replicated table is numbered \(t); the model has \(config.tables.count)")
        }
        for (t, table) in config.tables.enumerated() {
            let shards = shardsByRank.joined().filter { $0.table == t }
            if replicatedTables.contains(t) {
                guard shards.isEmpty else { throw ConfigError("table \(table.name) is replicated and also sharded") }
                continue
            }
            var area = 0
            for (i, shard) in shards.enumerated() {
                let rows = shard.rowRange(of: table)
                guard shard.columns.lowerBound >= 0, shard.columns.upperBound <= table.dim, !shard.columns.isEmpty,
                      rows.lowerBound >= 0, rows.upperBound <= table.rows, !rows.isEmpty else {
                    throw ConfigError("table \(table.name): shard of rows \(rows), columns \(shard.columns) outside its \(table.rows) x \(table.dim)")
                }
                if let other = shards[..<i].first(where: { $0.columns.overlaps(shard.columns) && $0.rowRange(of: table).overlaps(rows) }) {
                    throw ConfigError("table \(table.name): shards of rows \(rows), columns \(shard.columns) and rows \(other.rowRange(of: table)), columns \(other.columns) overlap")
                }
                area += rows.count * shard.columns.count
            }
            guard area == table.rows * table.dim else {
                throw ConfigError("table \(table.name): its shards own \(area) of its \(table.rows * table.dim) values, not each exactly once")
            }
        }
        self.world = world
        self.trace = trace
        self.config = config
        self.shardsByRank = shardsByRank
        self.replicatedTables = replicatedTables
        inputsByRank = shardsByRank.map { Array(Set($0.map(\.input))).sorted() }
        outputWidths = shardsByRank.map { $0.reduce(0) { $0 + $1.columns.count } }
        var tableOffsets: [Int] = [], running = 0
        for table in config.tables { tableOffsets.append(running); running += table.dim }
        pooledWidth = running
        pooledOffsets = shardsByRank.map { shards in shards.map { tableOffsets[$0.table] + $0.columns.lowerBound } }
        replicaOffsets = replicatedTables.map { tableOffsets[$0] }
        hasRowSplits = shardsByRank.joined().contains { $0.rows != nil }
        var places = [(rank: Int, column: Int)?](repeating: nil, count: config.tables.count)
        var whole = true
        for (rank, shards) in shardsByRank.enumerated() {
            var column = 0
            for shard in shards {
                whole = whole && shard.rows == nil && shard.columns == 0..<config.tables[shard.table].dim
                places[shard.table] = (rank, column)
                column += shard.columns.count
            }
        }
        wholeTablePlaces = whole ? places : nil
        holdsWholeModel = world.size == 1 && replicatedTables.isEmpty
            && shardsByRank[0] == config.tables.indices.map { EmbeddingShardSpec(table: $0, columns: 0..<config.tables[$0].dim) }
        let local = EmbeddingBagCollection(tables: config.tables, shards: shardsByRank[world.rank], features: inputsByRank[world.rank],
                                           optimizer: embeddingOptimizer, seed: seed)
        replicas = replicatedTables.isEmpty ? nil
            : EmbeddingBagCollection(tables: config.tables,
                                     shards: replicatedTables.map { EmbeddingShardSpec(table: $0, columns: 0..<config.tables[$0].dim) },
                                     optimizer: embeddingOptimizer, seed: seed)
        model = DLRM(config: config, embeddingOptimizer: embeddingOptimizer, denseOptimizer: denseOptimizer, seed: seed, embeddings: local)
        // Compute phases count CPU time too: with more ranks than cores, wall time includes
        // waiting for a core.
        local.timer = KernelTimer(countsCPU: true)
        replicas?.timer = KernelTimer(countsCPU: true)
        model.mlpTimer = KernelTimer(countsCPU: true)
        model.interactionTimer = KernelTimer(countsCPU: true)
    }

    /// Seconds this rank spent since the last reset in its embedding kernels, in exchanges
    /// and allreduces (waiting for slower ranks included), and in the MLPs and interaction,
    /// in wall time; and the CPU time of the compute phases (this thread's).
    public struct PhaseSeconds: Sendable {
        public var embedding: Double
        public var communication: Double
        public var dense: Double
        public var embeddingCPU: Double
        public var denseCPU: Double
    }

    /// The tables whose first columns this rank owns: it counts their rows for the monitor.
    public var countedTables: Set<Int> {
        Set(shardsByRank[world.rank].filter { $0.columns.lowerBound == 0 }.map(\.table))
    }

    public var phaseSeconds: PhaseSeconds {
        PhaseSeconds(embedding: embeddings.timer.seconds + (replicas?.timer.seconds ?? 0), communication: communicationTimer.seconds,
                     dense: model.mlpTimer.seconds + model.interactionTimer.seconds,
                     embeddingCPU: embeddings.timer.cpuSeconds + (replicas?.timer.cpuSeconds ?? 0),
                     denseCPU: model.mlpTimer.cpuSeconds + model.interactionTimer.cpuSeconds)
    }

    /// Threads of the embedding kernels, shards and replicas alike.
    public var embeddingThreads: Int {
        get { embeddings.threads }
        set {
            embeddings.threads = newValue
            replicas?.threads = newValue
        }
    }

    public func resetPhaseSeconds() {
        embeddings.timer.reset()
        replicas?.timer.reset()
        communicationTimer.reset()
        model.mlpTimer.reset()
        model.interactionTimer.reset()
    }

    // MARK: - Steps

    /// One training step on this rank's `local` samples of a global batch of `local.count ×
    /// size` samples. Returns the global batch's mean loss (on every rank). A non-finite loss
    /// (NaN or infinite, the same on every rank) leaves every parameter as it was.
    @discardableResult
    public func trainStep(_ local: ClickBatch, learningRate: Float) throws -> Double {
        let rows = local.count, global = rows * world.size
        let bags = try local.dense.withUnsafeBufferPointer { dense in
            try lookUp(local) { progress in
                trace.phase("bottom MLP", .compute) { model.forwardBottom(dense: dense.baseAddress!, rows: rows, progress: progress) }
            }
        }
        model.parameters.zeroGradients()
        var loss = local.labels.withUnsafeBufferPointer { labels in
            withPooledVectors(rows: rows) { vectors, gradients in
                trace.phase("interaction, top MLP, backward", .compute) {
                    model.forwardTop(pooled: vectors, rows: rows)
                    return model.backwardTop(pooled: vectors, labels: labels.baseAddress!, rows: rows, divisor: global, pooledGradient: gradients)
                }
            }
        }
        let bottomBackward = { (progress: () -> Void) in
            local.dense.withUnsafeBufferPointer { dense in
                self.trace.phase("bottom MLP backward", .compute) {
                    self.model.backwardBottom(dense: dense.baseAddress!, rows: rows, progress: progress)
                }
            }
        }
        if holdsWholeModel { bottomBackward {} } else { try returnGradients(rows: rows, overlapped: bottomBackward) }
        // The MLP gradients are summed while the embeddings update; the loss goes first, since
        // a non-finite one must leave the embeddings as they were.
        let start = ContinuousClock.now
        var mlpSum = try world.iallreduce(UnsafeMutableBufferPointer(start: model.parameters.gradients, count: model.parameters.count), .sum)
        loss = try world.allreduce(loss, .sum)
        trace.record("allreduce loss", .communication, since: start)
        communicationTimer.add(ContinuousClock.now - start)
        guard loss.isFinite else { return loss }
        trace.phase("embedding backward and update", .update) {
            (holdsWholeModel ? pooledGradient : ownerGradient).withUnsafeBufferPointer { gradient in
                embeddings.backwardAndUpdate(bags, outputGradient: gradient.baseAddress!, learningRate: learningRate) {
                    mlpSum.progress()
                }
            }
        }
        let resumed = ContinuousClock.now
        try mlpSum.wait()
        trace.record("wait MLP gradients", .wait, since: resumed)
        communicationTimer.add(ContinuousClock.now - resumed)
        trace.phase("MLP update", .update) { model.denseOptimizer.update(model.parameters, learningRate: learningRate) }
        if let replicas { try trace.phase("replicated tables: gradient sum and update", .update) { try updateReplicas(replicas, rows: rows, learningRate: learningRate) } }
        return loss
    }

    /// Logits of this rank's `local` samples (every rank must call it, with equal counts).
    /// Evaluation lookups are not measured by the monitor.
    public func predict(_ local: ClickBatch) throws -> [Float] {
        let measuring = monitor
        monitor = nil
        defer { monitor = measuring }
        try local.dense.withUnsafeBufferPointer { dense in
            _ = try lookUp(local) { model.forwardBottom(dense: dense.baseAddress!, rows: local.count, progress: $0) }
        }
        withPooledVectors(rows: local.count) { vectors, _ in model.forwardTop(pooled: vectors, rows: local.count) }
        return Array(UnsafeBufferPointer(start: model.logits, count: local.count))
    }

    // MARK: - Exchanges

    /// Sends every owner the bags of its tables for the local samples, runs this rank's
    /// embedding forward over the whole global batch, and brings each sample's pooled vector
    /// back to its rank (left in the exchange's blocks for tables placed whole, else unpacked
    /// into `pooled`), running `overlapped` (work that needs no embeddings,
    /// handed a progress call for the exchange) while the pooled vectors are in flight.
    /// Returns the global bags this rank looked up.
    private func lookUp(_ local: ClickBatch, overlapped: (_ progress: () -> Void) -> Void) throws -> BagBatch {
        let rows = local.count
        localBags = replicas == nil ? nil : local.bags
        if holdsWholeModel {
            resize(&pooled, rows * pooledWidth)
            trace.phase("embedding forward", .compute) { pooled.withUnsafeMutableBufferPointer { embeddings.forward(local.bags, into: $0.baseAddress!) } }
            if let monitor {
                for t in 0..<local.bags.features {
                    monitor.count(local.bags.indices[Int(local.bags.offsets[t * rows])..<Int(local.bags.offsets[(t + 1) * rows])], table: t)
                }
            }
            overlapped {}
            return local.bags
        }
        let bags = try trace.phase("input all-to-all", .communication) { try communicationTimer.measure { try exchangeBags(local.bags) } }
        let width = outputWidths[world.rank]
        resize(&ownerOutput, bags.batchSize * width)
        trace.phase("embedding forward", .compute) { ownerOutput.withUnsafeMutableBufferPointer { embeddings.forward(bags, into: $0.baseAddress!) } }
        let chunks = exchangeChunks(rows: rows)
        resize(&received, chunks.pooled.extent)
        try exchange(ownerOutput, chunks.owner, into: &received, chunks.pooled, waiting: "wait output all-to-all", overlapped: overlapped)
        resize(&pooled, rows * pooledWidth)
        if wholeTablePlaces == nil {
            trace.phase("unpack pooled vectors", .communication) {
                received.withUnsafeMutableBufferPointer { others in
                    ownerOutput.withUnsafeMutableBufferPointer { own in
                        pooled.withUnsafeMutableBufferPointer { target in
                            if hasRowSplits { target.update(repeating: 0) }
                            scatterColumns(blocks: blocks(others, chunks.pooled, own: own, rows: rows), pooled: target.baseAddress!,
                                           rows: rows, toPooled: true)
                        }
                    }
                }
            }
        }
        if let replicas { trace.phase("replicated tables forward", .compute) { lookUpReplicas(replicas, local.bags) } }
        return bags
    }

    /// Pools the replicated tables' bags of the local samples into their columns of `pooled`.
    private func lookUpReplicas(_ replicas: EmbeddingBagCollection, _ bags: BagBatch) {
        let rows = bags.batchSize, width = replicas.outputWidth
        resize(&replicaOutput, rows * width)
        replicaOutput.withUnsafeMutableBufferPointer { output in
            replicas.forward(bags, into: output.baseAddress!)
            pooled.withUnsafeMutableBufferPointer { pooled in
                for (k, shard) in replicas.shards.enumerated() {
                    for sample in 0..<rows {
                        (pooled.baseAddress! + sample * pooledWidth + replicaOffsets[k])
                            .update(from: output.baseAddress! + sample * width + shard.outputOffset, count: shard.width)
                    }
                }
            }
        }
    }

    /// The replicated tables' step: each rank's sparse gradient of its local samples, summed
    /// over ranks and applied alike on every rank. Per table, the sum goes by dense allreduce
    /// when the table's rows × dim are fewer floats than the gathered sparse rows would be.
    private func updateReplicas(_ replicas: EmbeddingBagCollection, rows: Int, learningRate: Float) throws {
        guard let bags = localBags else { return }
        let width = replicas.outputWidth
        replicaOutput.withUnsafeMutableBufferPointer { gradient in
            pooledGradient.withUnsafeBufferPointer { pooledGradient in
                for (k, shard) in replicas.shards.enumerated() {
                    for sample in 0..<rows {
                        (gradient.baseAddress! + sample * width + shard.outputOffset)
                            .update(from: pooledGradient.baseAddress! + sample * pooledWidth + replicaOffsets[k], count: shard.width)
                    }
                }
            }
            replicas.backward(bags, outputGradient: UnsafePointer(gradient.baseAddress!))
        }
        try communicationTimer.measure {
            let counts = try world.allgather(replicas.shards.map { Int64($0.gradientRows.count) })
            let tables = replicas.shards.count
            let dense = replicas.shards.enumerated().map { k, shard in
                let gathered = (0..<world.size).reduce(0) { $0 + Int(counts[$1 * tables + k]) }
                return shard.rows * shard.width <= gathered * (shard.width + 1)
            }
            try sumDense(replicas.shards.indices.filter { dense[$0] }.map { replicas.shards[$0] })
            try sumSparse(replicas.shards.indices.filter { !dense[$0] }.map { replicas.shards[$0] })
        }
        replicas.update(learningRate: learningRate)
    }

    /// Sums `shards`' sparse gradients over ranks as one dense allreduce of their tables.
    private func sumDense(_ shards: [EmbeddingBagCollection.Shard]) throws {
        guard !shards.isEmpty else { return }
        resize(&replicaSum, shards.reduce(0) { $0 + $1.rows * $1.width })
        let rows = shards.map(\.rows).max()!
        if everyRow.count < rows { everyRow = (0..<Int32(rows)).map { $0 } }
        try replicaSum.withUnsafeMutableBufferPointer { dense in
            dense.update(repeating: 0)
            var offset = 0
            for shard in shards {
                for (slot, row) in shard.gradientRows.enumerated() {
                    (dense.baseAddress! + offset + Int(row) * shard.width).update(from: shard.gradientPointer + slot * shard.width, count: shard.width)
                }
                offset += shard.rows * shard.width
            }
            try world.allreduce(dense, .sum)
            offset = 0
            everyRow.withUnsafeBufferPointer { every in
                for shard in shards {
                    shard.sumGradient([(UnsafeBufferPointer(rebasing: every[..<shard.rows]), UnsafePointer(dense.baseAddress! + offset))])
                    offset += shard.rows * shard.width
                }
            }
        }
    }

    /// Sums `shards`' sparse gradients over ranks by gathering every rank's rows and values.
    private func sumSparse(_ shards: [EmbeddingBagCollection.Shard]) throws {
        guard !shards.isEmpty else { return }
        var rows: [Int32] = [], values: [Float] = []
        for shard in shards {
            rows.append(Int32(shard.gradientRows.count))
            rows += shard.gradientRows
            values += UnsafeBufferPointer(start: shard.gradientPointer, count: shard.gradientRows.count * shard.width)
        }
        let allRows = try world.allgatherv(rows), allValues = try world.allgatherv(values)
        var rowCursor = (0..<world.size).map { allRows.chunks[$0].lowerBound }
        var valueCursor = (0..<world.size).map { allValues.chunks[$0].lowerBound }
        allRows.values.withUnsafeBufferPointer { gatheredRows in
            allValues.values.withUnsafeBufferPointer { gatheredValues in
                for shard in shards {
                    let parts = (0..<world.size).map { r in
                        let count = Int(gatheredRows[rowCursor[r]])
                        defer {
                            rowCursor[r] += 1 + count
                            valueCursor[r] += count * shard.width
                        }
                        return (rows: UnsafeBufferPointer(rebasing: gatheredRows[(rowCursor[r] + 1)..<(rowCursor[r] + 1 + count)]),
                                values: gatheredValues.baseAddress! + valueCursor[r])
                    }
                    shard.sumGradient(parts)
                }
            }
        }
    }

    /// Sends each owner the gradient of its columns of the local samples (into `ownerGradient`,
    /// global-batch rows in rank order, as the owner's forward output), running `overlapped`
    /// while they are in flight. `withPooledVectors`, which wrote the gradients, sized the
    /// buffers.
    private func returnGradients(rows: Int, overlapped: (_ progress: () -> Void) -> Void) throws {
        let chunks = exchangeChunks(rows: rows)
        if wholeTablePlaces == nil {
            trace.phase("pack gradients", .communication) {
                pooledGradient.withUnsafeMutableBufferPointer { source in
                    gradientsToSend.withUnsafeMutableBufferPointer { others in
                        ownerGradient.withUnsafeMutableBufferPointer { own in
                            scatterColumns(blocks: blocks(others, chunks.pooled, own: own, rows: rows), pooled: source.baseAddress!,
                                           rows: rows, toPooled: false)
                        }
                    }
                }
            }
        }
        try exchange(gradientsToSend, chunks.pooled, into: &ownerGradient, chunks.owner, waiting: "wait gradient all-to-all",
                     overlapped: overlapped)
    }

    /// Runs `body` with where the last lookup's pooled vectors are and where their gradients
    /// go: for tables placed whole, the exchanges' blocks; for split tables, and for
    /// replicated ones, the dense `pooled` and `pooledGradient`.
    private func withPooledVectors<R>(rows: Int, _ body: (_ vectors: PooledVectors, _ gradients: PooledVectors) -> R) -> R {
        let chunks = exchangeChunks(rows: rows)
        resize(&pooledGradient, rows * pooledWidth)
        if !holdsWholeModel {
            resize(&gradientsToSend, chunks.pooled.extent)
            resize(&ownerGradient, rows * world.size * outputWidths[world.rank])
        }
        return pooled.withUnsafeMutableBufferPointer { pooled in
            pooledGradient.withUnsafeMutableBufferPointer { pooledGradient in
                let dense = (model.denseLayout(pooled.baseAddress!), model.denseLayout(pooledGradient.baseAddress!))
                guard let places = wholeTablePlaces, !holdsWholeModel else { return body(dense.0, dense.1) }
                return received.withUnsafeMutableBufferPointer { received in
                    ownerOutput.withUnsafeMutableBufferPointer { ownerOutput in
                        gradientsToSend.withUnsafeMutableBufferPointer { gradientsToSend in
                            ownerGradient.withUnsafeMutableBufferPointer { ownerGradient in
                                func layout(_ blocks: [UnsafeMutablePointer<Float>?], _ dense: PooledVectors) -> PooledVectors {
                                    var vectors = dense
                                    for (t, place) in places.enumerated() {
                                        guard let place else { continue }
                                        vectors.bases[t] = blocks[place.rank]! + place.column
                                        vectors.strides[t] = outputWidths[place.rank]
                                    }
                                    return vectors
                                }
                                return body(layout(blocks(received, chunks.pooled, own: ownerOutput, rows: rows), dense.0),
                                            layout(blocks(gradientsToSend, chunks.pooled, own: ownerGradient, rows: rows), dense.1))
                            }
                        }
                    }
                }
            }
        }
    }

    /// The chunks of the pooled vectors' and their gradients' all-to-alls. Owner side: rank r's
    /// samples at r · rows · width of the owner's buffer. Pooled side: this rank's samples of
    /// owner q's columns, packed in rank order. Nothing goes to this rank itself: its own
    /// block is read or written in place, not copied through MPI.
    private func exchangeChunks(rows: Int) -> (owner: Chunks, pooled: Chunks) {
        let rank = world.rank, block = rows * outputWidths[rank]
        let owner = Chunks(counts: (0..<world.size).map { $0 == rank ? 0 : block }, displacements: (0..<world.size).map { $0 * block })
        let pooled = Chunks(counts: outputWidths.indices.map { $0 == rank ? 0 : rows * outputWidths[$0] })
        return (owner, pooled)
    }

    /// Per rank q, where its owner block of this rank's samples is: in `others` at `chunks`,
    /// or, for this rank, in its owner buffer `own`; nil for an empty block.
    private func blocks(_ others: UnsafeMutableBufferPointer<Float>, _ chunks: Chunks, own: UnsafeMutableBufferPointer<Float>,
                        rows: Int) -> [UnsafeMutablePointer<Float>?] {
        (0..<world.size).map { q in
            q == world.rank ? own.baseAddress.map { $0 + q * rows * outputWidths[q] } : others.baseAddress.map { $0 + chunks.displacements[q] }
        }
    }

    /// One all-to-all of `send` into `recv`, with `overlapped` run while it is in flight and
    /// handed the exchange's progress call; the time outside `overlapped` counts as
    /// communication, the wait is traced as `waiting`.
    private func exchange(_ send: [Float], _ sendChunks: Chunks, into recv: inout [Float], _ recvChunks: Chunks,
                          waiting: StaticString, overlapped: (_ progress: () -> Void) -> Void) throws {
        try send.withUnsafeBufferPointer { send in
            try recv.withUnsafeMutableBufferPointer { recv in
                let start = ContinuousClock.now
                var request = try world.ialltoallv(send, sendChunks, into: recv, recvChunks)
                let started = ContinuousClock.now
                overlapped { request.progress() }
                let resumed = ContinuousClock.now
                try request.wait()
                trace.record(waiting, .wait, since: resumed)
                communicationTimer.add(started - start + (ContinuousClock.now - resumed))
            }
        }
    }

    /// Moves shard columns between owner blocks (rank q's `rows` × outputWidths[q] floats at
    /// `blocks[q]`) and pooled vectors (`rows` × pooledWidth at `pooled`): into pooled when
    /// `toPooled` (a row range's partial sums added), out of it otherwise (every row range
    /// gets the gradient of its columns).
    private func scatterColumns(blocks: [UnsafeMutablePointer<Float>?], pooled: UnsafeMutablePointer<Float>, rows: Int, toPooled: Bool) {
        for (q, shards) in shardsByRank.enumerated() {
            guard let block = blocks[q] else { continue }
            let width = outputWidths[q]
            var column = 0
            for (k, shard) in shards.enumerated() {
                let count = shard.columns.count, pooledColumn = pooledOffsets[q][k]
                for sample in 0..<rows {
                    let blockRow = block + sample * width + column, pooledRow = pooled + sample * pooledWidth + pooledColumn
                    if toPooled && shard.rows != nil {
                        addRow(pooledRow, blockRow, width: count)
                    } else if toPooled {
                        pooledRow.update(from: blockRow, count: count)
                    } else {
                        blockRow.update(from: pooledRow, count: count)
                    }
                }
                column += count
            }
        }
    }

    /// The input all-to-all: each rank sends each owner, per input the owner pools (a table, or
    /// a row range of one), the bag lengths of its samples and then their indices (those in the
    /// range only); the owner lays them out as one batch of every rank's samples in rank order,
    /// indices relative to the range's first row. With a monitor, every request sent and served
    /// is sketched by its table row (and faults, if any, are injected between the two).
    private func exchangeBags(_ local: BagBatch) throws(MPIError) -> BagBatch {
        let rows = local.batchSize, ranks = world.size
        var send: [Int32] = []
        var sendCounts: [Int] = []
        var inRange: [Int32] = []
        for (destination, inputs) in inputsByRank.enumerated() {
            let before = send.count
            send += repeatElement(0, count: inputs.count * rows)
            for (k, input) in inputs.enumerated() {
                let t = input.table
                if let range = input.rows {
                    for sample in 0..<rows {
                        let start = send.count
                        inRange.removeAll(keepingCapacity: true)
                        for j in local.bag(feature: t, sample: sample) where range.contains(Int(local.indices[j])) { inRange.append(local.indices[j]) }
                        if let monitor { monitor.send(inRange[...], table: t, sample: sample, to: destination, into: &send) } else { send += inRange }
                        send[before + k * rows + sample] = Int32(send.count - start)
                    }
                } else if let monitor, monitor.faults != nil {
                    for sample in 0..<rows {
                        let start = send.count
                        monitor.send(local.indices[local.bag(feature: t, sample: sample)], table: t, sample: sample, to: destination, into: &send)
                        send[before + k * rows + sample] = Int32(send.count - start)
                    }
                } else {
                    for sample in 0..<rows { send[before + k * rows + sample] = Int32(local.bag(feature: t, sample: sample).count) }
                    monitor?.sent(local, table: t)
                    send += local.indices[Int(local.offsets[t * rows])..<Int(local.offsets[(t + 1) * rows])]
                }
            }
            sendCounts.append(send.count - before)
        }
        let parts = try world.alltoallv(send, sendCounts: sendCounts)
        let inputs = inputsByRank[world.rank]
        var bags = BagBatch(batchSize: rows * ranks, features: inputs.count, reservingIndices: parts.values.count)
        var cursors = (0..<ranks).map { parts.chunks[$0].lowerBound + inputs.count * rows }
        for (f, input) in inputs.enumerated() {
            let firstRow = Int32(input.rows?.lowerBound ?? 0)
            for r in 0..<ranks {
                let lengths = parts.values[(parts.chunks[r].lowerBound + f * rows)...].prefix(rows)
                let first = cursors[r]
                cursors[r] += lengths.reduce(0) { $0 + Int($1) }
                bags.appendBags(lengths: lengths, indices: parts.values[first..<cursors[r]], less: firstRow)
                monitor?.serve(parts.values[first..<cursors[r]], lengths: lengths, table: input.table, from: r)
            }
        }
        return bags
    }

    private func resize(_ buffer: inout [Float], _ count: Int) {
        if buffer.count != count { buffer = [Float](repeating: 0, count: count) }
    }
}
