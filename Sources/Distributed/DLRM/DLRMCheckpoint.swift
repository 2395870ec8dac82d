import Foundation
import Models

/// Checkpoints of a `ShardedDLRM` in `directory/step-<N>/`: `manifest.json` (model, placement,
/// optimizers, step), `dense.bin` (MLP parameters and the dense optimizer's state) and one
/// `rank-<r>.bin` per rank (each shard's rows, then their row-wise Adagrad accumulators; then
/// the same for each replicated table).
/// Ranks write into `step-<N>.partial/`; when every file is in place, rank 0 renames it to
/// `step-<N>`, so a checkpoint is complete or absent and an interrupted save never replaces a
/// good one. Every random draw is counter-based (a function of the seed and a sample or row
/// index), so the step is the whole data and random-number position.
///
/// Loading reshards: each rank reads the blocks (rows and columns) it now owns, shards and
/// replicas alike, from whichever files hold them (the checkpoint directory must be visible to
/// every rank), so a run may resume with another plan, other sharding types or another rank
/// count. A row-wise Adagrad accumulator is per shard; a column range cut differently from the
/// saved one takes the accumulators of the saved shard it starts in.
public enum DLRMCheckpoint {
    public static let formatVersion = 1

    struct Manifest: Codable {
        var formatVersion: Int
        var step: Int
        var config: DLRMConfig
        var embeddingOptimizer: EmbeddingOptimizer
        var denseOptimizer: DenseOptimizer.Kind
        var shardsByRank: [[EmbeddingShardSpec]]
        /// Tables every rank holds (absent in checkpoints without any).
        var replicatedTables: [Int]?

        /// Per rank, the blocks its file holds in order: shards, then replicas.
        var blocksByRank: [[EmbeddingShardSpec]] {
            let replicas = (replicatedTables ?? []).map { EmbeddingShardSpec(table: $0, columns: 0..<config.tables[$0].dim) }
            return shardsByRank.map { $0 + replicas }
        }
    }

    /// Saves `trainer` after `step` steps into `directory` (created if needed), collectively.
    public static func save(_ trainer: ShardedDLRM, step: Int, directory: String) throws {
        let world = trainer.world
        let root = URL(fileURLWithPath: directory)
        let partial = root.appendingPathComponent("step-\(step).partial"), final = root.appendingPathComponent("step-\(step)")
        try world.agreeing {
            guard world.rank == 0 else { return }
            try? FileManager.default.removeItem(at: partial)
            do {
                try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
            } catch {
                throw ConfigError("\(directory): cannot create a checkpoint there (\(error.localizedDescription))")
            }
        }
        try world.agreeing {
            try write(framed(shardBytes(trainer.embeddings.shards + (trainer.replicas?.shards ?? []))),
                      to: partial.appendingPathComponent("rank-\(world.rank).bin"))
            guard world.rank == 0 else { return }
            try write(framed(denseBytes(trainer.model)), to: partial.appendingPathComponent("dense.bin"))
            let manifest = Manifest(formatVersion: formatVersion, step: step, config: trainer.config,
                                    embeddingOptimizer: trainer.embeddings.optimizer, denseOptimizer: trainer.model.denseOptimizer.kind,
                                    shardsByRank: trainer.shardsByRank,
                                    replicatedTables: trainer.replicatedTables.isEmpty ? nil : trainer.replicatedTables)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try write(encoder.encode(manifest), to: partial.appendingPathComponent("manifest.json"))
        }
        try world.agreeing {
            guard world.rank == 0 else { return }
            try? FileManager.default.removeItem(at: final)
            guard rename(partial.path, final.path) == 0 else {
                throw ConfigError("\(final.path): cannot commit the checkpoint (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// The newest complete checkpoint in `directory` (`step-<N>` with a manifest), or nil.
    public static func newest(in directory: String) -> (path: String, step: Int)? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let steps = names.compactMap { name -> Int? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            return FileManager.default.fileExists(atPath: "\(directory)/\(name)/manifest.json") ? step : nil
        }
        return steps.max().map { ("\(directory)/step-\($0)", $0) }
    }

    /// Loads the checkpoint at `path` into `trainer` (any placement, any rank count) and returns
    /// its step. A checkpoint of another model, format or optimizer, or with a missing or
    /// truncated file, throws on every rank with one message.
    public static func load(into trainer: ShardedDLRM, from path: String) throws -> Int {
        try trainer.world.agreeing {
            let manifest = try readManifest(path)
            guard manifest.config == trainer.config else {
                throw ConfigError("\(path): the checkpoint is of another model (MLPs or tables differ from this run's)")
            }
            guard manifest.embeddingOptimizer == trainer.embeddings.optimizer, manifest.denseOptimizer == trainer.model.denseOptimizer.kind else {
                throw ConfigError("\(path): the checkpoint was trained with --optimizer \(manifest.denseOptimizer.rawValue)")
            }
            try loadDense(into: trainer.model, from: "\(path)/dense.bin")
            try loadShards(into: trainer.embeddings.shards + (trainer.replicas?.shards ?? []), manifest: manifest, path: path)
            return manifest.step
        }
    }

    // MARK: - Internals

    /// 8-byte magic and the payload's byte count, so a truncated file is caught before use.
    private static let magic = Array("MPTCKPT\(formatVersion)".utf8)
    private static let headerBytes = 16

    /// `payload` behind the header.
    private static func framed(_ payload: Data) -> Data {
        var data = Data(magic)
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(payload)
        return data
    }

    private static func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw ConfigError("\(url.path): cannot write (\(error.localizedDescription))")
        }
    }

    /// The payload of a checkpoint file, mapped, after checking its header and length.
    private static func read(_ path: String, expecting bytes: Int) throws -> Data {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw ConfigError("\(path): missing or unreadable")
        }
        guard data.count >= headerBytes, Array(data.prefix(8)) == magic else {
            throw ConfigError("\(path): not a checkpoint file of format \(formatVersion)")
        }
        let declared = data.subdata(in: 8..<16).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard declared == bytes, data.count == headerBytes + bytes else {
            throw ConfigError("\(path): truncated or of another shape (\(data.count - headerBytes) bytes, \(bytes) expected)")
        }
        return data.subdata(in: headerBytes..<data.count)
    }

    private static func readManifest(_ path: String) throws -> Manifest {
        guard let data = FileManager.default.contents(atPath: "\(path)/manifest.json") else {
            throw ConfigError("\(path)/manifest.json: missing or unreadable")
        }
        guard let version = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["formatVersion"] as? Int else {
            throw ConfigError("\(path)/manifest.json: not a checkpoint manifest")
        }
        guard version == formatVersion else {
            throw ConfigError("\(path)/manifest.json: format version \(version); this build reads version \(formatVersion)")
        }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw ConfigError("\(path)/manifest.json: \(error)")
        }
    }

    private static func floats(_ pointer: UnsafePointer<Float>, _ count: Int) -> Data {
        Data(bytes: pointer, count: count * MemoryLayout<Float>.size)
    }

    private static func denseBytes(_ model: DLRM) -> Data {
        var data = floats(model.parameters.values, model.parameters.count)
        model.denseOptimizer.accumulators.withUnsafeBufferPointer { data.append(floats($0.baseAddress!, $0.count)) }
        return data
    }

    private static func shardBytes(_ shards: [EmbeddingBagCollection.Shard]) -> Data {
        var data = Data()
        for shard in shards {
            data.append(floats(shard.weights, shard.rows * shard.width))
            if let accumulators = shard.accumulators { data.append(floats(accumulators, shard.rows)) }
        }
        return data
    }

    private static func loadDense(into model: DLRM, from path: String) throws {
        let count = model.parameters.count, stateCount = model.denseOptimizer.accumulators.count
        let data = try read(path, expecting: (count + stateCount) * MemoryLayout<Float>.size)
        data.withUnsafeBytes { raw in
            let values = raw.bindMemory(to: Float.self)
            model.parameters.values.update(from: values.baseAddress!, count: count)
            model.denseOptimizer.restore(accumulators: Array(values[count..<(count + stateCount)]))
        }
    }

    /// Fills every local block from the saved blocks that overlap it, reading each rank's file
    /// only when it holds a block no earlier file gave (a replica is read once).
    private static func loadShards(into local: [EmbeddingBagCollection.Shard], manifest: Manifest, path: String) throws {
        let adagrad = manifest.embeddingOptimizer == .adagrad
        let tables = manifest.config.tables
        var loaded = Set<EmbeddingShardSpec>()
        for (rank, saved) in manifest.blocksByRank.enumerated() {
            func overlaps(_ spec: EmbeddingShardSpec, _ target: EmbeddingBagCollection.Shard) -> Bool {
                spec.table == target.spec.table && spec.columns.overlaps(target.spec.columns)
                    && spec.rowRange(of: tables[spec.table]).overlaps(target.firstRow..<(target.firstRow + target.rows))
            }
            let needed = saved.filter { spec in !loaded.contains(spec) && local.contains { overlaps(spec, $0) } }
            guard !needed.isEmpty else { continue }
            let sizes = saved.map { $0.rowRange(of: tables[$0.table]).count * ($0.columns.count + (adagrad ? 1 : 0)) }
            let data = try read("\(path)/rank-\(rank).bin", expecting: sizes.reduce(0, +) * MemoryLayout<Float>.size)
            data.withUnsafeBytes { raw in
                var offset = 0
                for (k, spec) in saved.enumerated() {
                    defer { offset += sizes[k] }
                    guard needed.contains(spec) else { continue }
                    loaded.insert(spec)
                    let source = raw.bindMemory(to: Float.self).baseAddress! + offset
                    let savedRows = spec.rowRange(of: tables[spec.table])
                    for target in local where overlaps(spec, target) {
                        let columns = spec.columns.clamped(to: target.spec.columns)
                        let rows = savedRows.clamped(to: target.firstRow..<(target.firstRow + target.rows))
                        let from = columns.lowerBound - spec.columns.lowerBound, to = columns.lowerBound - target.spec.columns.lowerBound
                        for row in rows {
                            (target.weights + (row - target.firstRow) * target.width + to)
                                .update(from: source + (row - savedRows.lowerBound) * spec.columns.count + from, count: columns.count)
                        }
                        if let accumulators = target.accumulators, spec.columns.contains(target.spec.columns.lowerBound) {
                            (accumulators + rows.lowerBound - target.firstRow)
                                .update(from: source + savedRows.count * spec.columns.count + rows.lowerBound - savedRows.lowerBound, count: rows.count)
                        }
                    }
                }
            }
        }
    }
}
