/// Embedding tables (or column ranges of them) with sum pooling: one fused forward over every
/// local shard into a (batch, Σ widths) output, a sparse backward that sums each used row's
/// gradient once, and optimizer updates that touch only those rows.
public final class EmbeddingBagCollection {
    /// One local shard: rows × width floats, fed by one feature of the batch (indices relative
    /// to `firstRow`), writing the output columns `outputOffset ..< outputOffset + width`.
    public final class Shard {
        public let spec: EmbeddingShardSpec
        public let table: EmbeddingTableSpec
        public let feature: Int
        public let outputOffset: Int
        /// The table row of local row 0.
        public let firstRow: Int
        /// Rows held.
        public let rows: Int
        public var width: Int { spec.columns.count }
        public let weights: UnsafeMutablePointer<Float>
        /// Row-wise Adagrad accumulators (one per row), when that optimizer is in use.
        public let accumulators: UnsafeMutablePointer<Float>?
        /// For each row: its slot in the sparse gradient of the current step, or -1.
        let slotOfRow: UnsafeMutablePointer<Int32>
        /// The sparse gradient of the last backward: distinct rows and their summed gradients.
        public private(set) var gradientRows: [Int32] = []
        /// Summed gradients of `gradientRows`, (capacity, width), grown on demand.
        private(set) var gradientValues: UnsafeMutablePointer<Float>
        private var gradientCapacity = 0

        init(spec: EmbeddingShardSpec, table: EmbeddingTableSpec, feature: Int, outputOffset: Int,
             optimizer: EmbeddingOptimizer, seed: UInt64) {
            self.spec = spec
            self.table = table
            self.feature = feature
            self.outputOffset = outputOffset
            let rowRange = spec.rowRange(of: table)
            firstRow = rowRange.lowerBound
            rows = rowRange.count
            let width = spec.columns.count
            weights = HugePageMemory.allocate(Float.self, capacity: rows * width)
            Self.initialize(weights, table: table, tableIndex: spec.table, rows: rowRange, columns: spec.columns, seed: seed)
            accumulators = optimizer == .adagrad ? .allocate(capacity: max(rows, 1)) : nil
            accumulators?.initialize(repeating: 0, count: max(rows, 1))
            slotOfRow = .allocate(capacity: max(rows, 1))
            slotOfRow.initialize(repeating: -1, count: max(rows, 1))
            gradientValues = .allocate(capacity: 1)
        }

        deinit {
            HugePageMemory.deallocate(weights)
            gradientValues.deallocate()
            accumulators?.deallocate()
            slotOfRow.deallocate()
        }

        /// U(-sqrt(1/rows), sqrt(1/rows)) as a function of (seed, table, row, column), so every
        /// sharding of a table starts from the same values.
        static func initialize(_ weights: UnsafeMutablePointer<Float>, table: EmbeddingTableSpec, tableIndex: Int,
                               rows: Range<Int>, columns: Range<Int>, seed: UInt64) {
            var mixer = SplitMix64(seed: seed, stream: "embedding", index: UInt64(tableIndex))
            let key = mixer.next()
            let bound = Float((1 / Double(table.rows)).squareRoot())
            let width = columns.count
            for row in rows {
                let base = UInt64(row) &* UInt64(table.dim) &+ UInt64(columns.lowerBound)
                let out = weights + (row - rows.lowerBound) * width
                for c in 0..<width {
                    let unit = Float(counterHash(key, base &+ UInt64(c)) >> 40) * 0x1p-24
                    out[c] = (2 * unit - 1) * bound
                }
            }
        }

        /// Local row `row`'s gradient of the last backward, or nil when the row was not used.
        public func gradient(ofRow row: Int) -> ArraySlice<Float>? {
            guard let slot = gradientRows.firstIndex(of: Int32(row)) else { return nil }
            return ArraySlice(UnsafeBufferPointer(start: gradientValues + slot * width, count: width))
        }

        /// Replaces the sparse gradient with the sum of `parts`, in order: each part's local
        /// rows and their gradients (rows.count × width), rows repeating within and across parts.
        /// Ranks summing the same parts in the same order hold bit-identical gradients.
        public func sumGradient(_ parts: [(rows: UnsafeBufferPointer<Int32>, values: UnsafePointer<Float>)]) {
            let total = parts.reduce(0) { $0 + $1.rows.count }
            reserveGradient(total)
            gradientRows.removeAll(keepingCapacity: true)
            for part in parts {
                for (k, row) in part.rows.enumerated() {
                    let g = part.values + k * width, slot = Int(slotOfRow[Int(row)])
                    if slot < 0 {
                        slotOfRow[Int(row)] = Int32(gradientRows.count)
                        (gradientValues + gradientRows.count * width).update(from: g, count: width)
                        gradientRows.append(row)
                    } else {
                        addRow(gradientValues + slot * width, g, width: width)
                    }
                }
            }
            for row in gradientRows { slotOfRow[Int(row)] = -1 }
        }

        /// The sparse gradient's summed values, (gradientRows.count, width).
        public var gradientPointer: UnsafePointer<Float> { UnsafePointer(gradientValues) }

        private func reserveGradient(_ lookups: Int) {
            guard lookups > gradientCapacity else { return }
            gradientValues.deallocate()
            gradientCapacity = lookups
            gradientValues = .allocate(capacity: lookups * width)
        }

        /// Sums dOutput's columns of this shard into one gradient row per distinct index.
        func accumulateGradient(_ batch: BagBatch, indices: UnsafeBufferPointer<Int32>, offsets: UnsafeBufferPointer<Int32>,
                                outputGradient: UnsafePointer<Float>, stride: Int) {
            let first = feature * batch.batchSize
            reserveGradient(Int(offsets[first + batch.batchSize]) - Int(offsets[first]))
            gradientRows.removeAll(keepingCapacity: true)
            for sample in 0..<batch.batchSize {
                let g = outputGradient + sample * stride + outputOffset
                for j in Int(offsets[first + sample])..<Int(offsets[first + sample + 1]) {
                    let row = Int(indices[j])
                    let slot = Int(slotOfRow[row])
                    if slot < 0 {
                        slotOfRow[row] = Int32(gradientRows.count)
                        (gradientValues + gradientRows.count * width).update(from: g, count: width)
                        gradientRows.append(Int32(row))
                    } else {
                        addRow(gradientValues + slot * width, g, width: width)
                    }
                }
            }
            for row in gradientRows { slotOfRow[Int(row)] = -1 }
        }
    }

    public let tables: [EmbeddingTableSpec]
    public let shards: [Shard]
    public let optimizer: EmbeddingOptimizer
    public let outputWidth: Int
    public var epsilon: Float = 1e-10
    /// Threads that share the shards in the forward and the fused SGD update.
    public var threads = 1
    /// Time inside the forward, backward and update kernels.
    public var timer = KernelTimer()
    /// Bytes of embedding rows and accumulators the last step read and wrote (forward row
    /// reads, then each used row read and written once by the update).
    public private(set) var bytesMoved = 0

    /// Shards of `tables` fed by a batch whose features are the lookups `features` in that
    /// order (every table whole, in order, by default).
    public init(tables: [EmbeddingTableSpec], shards: [EmbeddingShardSpec], features: [EmbeddingInput]? = nil,
                optimizer: EmbeddingOptimizer, seed: UInt64) {
        self.tables = tables
        self.optimizer = optimizer
        let features = features ?? tables.indices.map { EmbeddingInput(table: $0) }
        var offset = 0
        var built: [Shard] = []
        for spec in shards {
            let table = tables[spec.table]
            precondition(spec.columns.lowerBound >= 0 && spec.columns.upperBound <= table.dim && !spec.columns.isEmpty,
                         "shard columns \(spec.columns) outside table \(table.name) of dim \(table.dim)")
            precondition(spec.rows.map { $0.lowerBound >= 0 && $0.upperBound <= table.rows && !$0.isEmpty } ?? true,
                         "shard rows \(spec.rows!) outside table \(table.name) of \(table.rows) rows")
            guard let feature = features.firstIndex(of: spec.input) else { preconditionFailure("table \(table.name) has no feature") }
            built.append(Shard(spec: spec, table: table, feature: feature, outputOffset: offset, optimizer: optimizer, seed: seed))
            offset += spec.columns.count
        }
        self.shards = built
        outputWidth = offset
    }

    /// Every table whole, in order: the single-rank model.
    public convenience init(tables: [EmbeddingTableSpec], optimizer: EmbeddingOptimizer, seed: UInt64) {
        self.init(tables: tables, shards: tables.indices.map { EmbeddingShardSpec(table: $0, columns: 0..<tables[$0].dim) },
                  optimizer: optimizer, seed: seed)
    }

    /// output (batch, outputWidth) = per sample, per shard, the sum of the bag's rows.
    public func forward(_ batch: BagBatch, into output: UnsafeMutablePointer<Float>) {
        if let problem = validate(batch) { preconditionFailure(problem) }
        let stride = outputWidth
        timer.measure {
            output.update(repeating: 0, count: batch.batchSize * stride)
            bytesMoved = visitLookups(batch, forWrite: false) { shard, sample, row in
                addRow(output + sample * stride + shard.outputOffset, row, width: shard.width)
            }
        }
    }

    /// Sums dOutput (batch, outputWidth) into each shard's sparse gradient: one entry per
    /// distinct row of the batch.
    public func backward(_ batch: BagBatch, outputGradient: UnsafePointer<Float>) {
        let stride = outputWidth
        timer.measure {
            batch.indices.withUnsafeBufferPointer { indices in
                batch.offsets.withUnsafeBufferPointer { offsets in
                    for shard in shards {
                        shard.accumulateGradient(batch, indices: indices, offsets: offsets,
                                                 outputGradient: outputGradient, stride: stride)
                    }
                }
            }
        }
    }

    /// Backward and update in one pass where the optimizer allows, as FBGEMM fuses them: SGD
    /// subtracts lr · dOutput from each looked-up row in place (no gradient is materialised);
    /// Adagrad needs each row's summed gradient first, so it runs `backward` then `update`.
    /// With one thread, `progress` runs on the calling thread after each shard, e.g. to let an
    /// MPI exchange in flight move on (MPI progresses only inside its calls).
    public func backwardAndUpdate(_ batch: BagBatch, outputGradient: UnsafePointer<Float>, learningRate: Float,
                                  progress: () -> Void = {}) {
        guard optimizer == .sgd else {
            backward(batch, outputGradient: outputGradient)
            update(learningRate: learningRate)
            return
        }
        let stride = outputWidth
        timer.measure {
            bytesMoved += 2 * visitLookups(batch, forWrite: true, progress: progress) { shard, sample, row in
                subtractScaledRow(row, outputGradient + sample * stride + shard.outputOffset, scale: learningRate, width: shard.width)
            }
        }
    }

    /// Calls `body(shard, sample, row)` for every lookup of every shard in batch order, with the
    /// row `prefetchDistance` lookups ahead already requested; shards are split over `threads`
    /// (each writes only its own rows and output columns). With one thread, `progress` runs
    /// after each shard. Returns the bytes of rows visited.
    @inline(__always)
    private func visitLookups(_ batch: BagBatch, forWrite: Bool, progress: () -> Void = {},
                              _ body: (Shard, Int, UnsafeMutablePointer<Float>) -> Void) -> Int {
        let workers = min(threads, shards.count)
        var bytes = [Int](repeating: 0, count: max(workers, 1))
        batch.indices.withUnsafeBufferPointer { indices in
            batch.offsets.withUnsafeBufferPointer { offsets in
                bytes.withUnsafeMutableBufferPointer { bytes in
                    parallelFor(max(workers, 1)) { worker in
                        for shard in stride(from: worker, to: shards.count, by: max(workers, 1)).map({ shards[$0] }) {
                            let width = shard.width
                            let first = shard.feature * batch.batchSize
                            let end = Int(offsets[first + batch.batchSize])
                            for sample in 0..<batch.batchSize {
                                for j in Int(offsets[first + sample])..<Int(offsets[first + sample + 1]) {
                                    if j + prefetchDistance < end {
                                        prefetchRow(shard.weights + Int(indices[j + prefetchDistance]) * width, width: width, forWrite: forWrite)
                                    }
                                    body(shard, sample, shard.weights + Int(indices[j]) * width)
                                }
                            }
                            bytes[worker] += (end - Int(offsets[first])) * width * MemoryLayout<Float>.size
                            if workers == 1 { progress() }
                        }
                    }
                }
            }
        }
        return bytes.reduce(0, +)
    }

    /// Applies the sparse gradients of the last backward with the collection's optimizer.
    public func update(learningRate: Float) {
        var bytes = 0
        let epsilon = self.epsilon
        timer.measure {
            for shard in shards {
                let width = shard.width
                do {
                    for (slot, row) in shard.gradientRows.enumerated() {
                        if slot + prefetchDistance < shard.gradientRows.count {
                            prefetchRow(shard.weights + Int(shard.gradientRows[slot + prefetchDistance]) * width, width: width, forWrite: true)
                        }
                        let weights = shard.weights + Int(row) * width
                        let g = shard.gradientValues + slot * width
                        var scale = learningRate
                        if let accumulators = shard.accumulators {
                            var squares: Float = 0
                            for c in 0..<width { squares += g[c] * g[c] }
                            accumulators[Int(row)] += squares / Float(width)
                            scale = learningRate / (accumulators[Int(row)].squareRoot() + epsilon)
                        }
                        subtractScaledRow(weights, g, scale: scale, width: width)
                    }
                }
                bytes += shard.gradientRows.count * (2 * width * 4 + (shard.accumulators == nil ? 0 : 8))
            }
        }
        bytesMoved += bytes
    }

    /// Why `batch` cannot feed these shards, or nil: feature count, and every index a row.
    public func validate(_ batch: BagBatch) -> String? {
        let needed = (shards.map(\.feature).max() ?? -1) + 1
        guard batch.features >= needed else { return "batch has \(batch.features) features, shards need \(needed)" }
        for shard in shards {
            let first = shard.feature * batch.batchSize
            for j in Int(batch.offsets[first])..<Int(batch.offsets[first + batch.batchSize]) {
                let row = batch.indices[j]
                if row < 0 || Int(row) >= shard.rows { return "index \(row) outside table \(shard.table.name) of \(shard.rows) rows" }
            }
        }
        return nil
    }
}

/// Lookups ahead whose rows are prefetched: enough misses in flight to cover memory latency.
let prefetchDistance = 16

/// out[0..<width] += row[0..<width], sixteen lanes at a time.
@inlinable @inline(__always)
public func addRow(_ out: UnsafeMutablePointer<Float>, _ row: UnsafePointer<Float>, width: Int) {
    var c = 0
    while c + 16 <= width {
        let sum = UnsafeRawPointer(out + c).loadUnaligned(as: SIMD16<Float>.self) + UnsafeRawPointer(row + c).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(out + c).storeBytes(of: sum, as: SIMD16<Float>.self)
        c += 16
    }
    while c < width {
        out[c] += row[c]
        c += 1
    }
}

/// row[0..<width] -= scale · g[0..<width], sixteen lanes at a time.
@inline(__always)
func subtractScaledRow(_ row: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, scale: Float, width: Int) {
    var c = 0
    let s = SIMD16<Float>(repeating: scale)
    while c + 16 <= width {
        let value = UnsafeRawPointer(row + c).loadUnaligned(as: SIMD16<Float>.self) - s * UnsafeRawPointer(g + c).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(row + c).storeBytes(of: value, as: SIMD16<Float>.self)
        c += 16
    }
    while c < width {
        row[c] -= scale * g[c]
        c += 1
    }
}
