import Foundation
import Models
import Sharding

/// Checkpoints of a `ShardedDLRM` in `directory/step-<N>/`: `manifest.json` (model, placement,
/// optimizers, the run's identity, every data file's byte count and CRC32C, and a CRC32C of
/// the manifest itself), `dense.bin` (MLP parameters and the dense optimizer's state) and one
/// `rank-<r>.bin` per rank (each shard's rows, then their row-wise Adagrad accumulators; then
/// the same for each replicated table).
/// Ranks write into `step-<N>.partial/`; when every file is in place, rank 0 renames it to
/// `step-<N>`, so a checkpoint is complete or absent and an interrupted save never replaces a
/// good one. Every random draw is counter-based (a function of the seed and a sample or row
/// index), so the step is the whole data and random-number position. The step is the
/// directory's; the manifest repeats it, and a manifest that disagrees is damaged.
///
/// Every load checks the whole checkpoint first, its files shared out among the ranks: a
/// damaged one (a flipped bit, a cut or missing file, a file of another save) is never
/// trained on. `resume` then falls back to the newest intact checkpoint, and refuses one
/// of another run (other seed, tables or model) with a line saying what differs.
///
/// Loading reshards: each rank reads the blocks (rows and columns) it now owns, shards and
/// replicas alike, from whichever files hold them (the checkpoint directory must be visible to
/// every rank), so a run may resume with another plan, other sharding types or another rank
/// count. A row-wise Adagrad accumulator is per shard; a column range cut differently from the
/// saved one takes the accumulators of the saved shard it starts in.
public enum DLRMCheckpoint {
    public static let formatVersion = 2

    /// What makes two runs the same run: a checkpoint of another is refused on resume.
    public struct RunIdentity: Codable, Equatable, Sendable {
        public var seed: UInt64
        /// CRC32C of the table specs as sorted-key JSON (rows, dims, pooling, bag sizes, reuse).
        public var tables: UInt32

        public init(seed: UInt64, tables: [TableSpec]) {
            self.seed = seed
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            self.tables = CRC32C.checksum((try? encoder.encode(tables)) ?? Data())
        }
    }

    /// The checkpoint `resume` loaded, and the newer ones it passed over as damaged.
    public struct Resumption: Sendable {
        public var path: String
        public var step: Int
        public var skipped: [(path: String, problem: String)]
    }

    /// A data file as its writer saw it.
    struct FileCheck: Codable, Equatable {
        var bytes: Int
        var crc32c: UInt32
    }

    struct Manifest: Codable {
        var formatVersion: Int
        var step: Int
        var run: RunIdentity
        var config: DLRMConfig
        var embeddingOptimizer: EmbeddingOptimizer
        var denseOptimizer: DenseOptimizer.Kind
        var shardsByRank: [[EmbeddingShardSpec]]
        /// Tables every rank holds (absent in checkpoints without any).
        var replicatedTables: [Int]?
        /// Every data file by name.
        var files: [String: FileCheck]
        /// CRC32C of this manifest's sorted-key JSON without this field.
        var checksum: UInt32?

        /// CRC32C of the sorted-key JSON of this manifest without its checksum.
        func ownChecksum() throws -> UInt32 {
            var unsigned = self
            unsigned.checksum = nil
            return CRC32C.checksum(try manifestEncoder.encode(unsigned))
        }

        /// Per rank, the blocks its file holds in order: shards, then replicas.
        var blocksByRank: [[EmbeddingShardSpec]] {
            let replicas = (replicatedTables ?? []).map { EmbeddingShardSpec(table: $0, columns: 0..<config.tables[$0].dim) }
            return shardsByRank.map { $0 + replicas }
        }
    }

    /// Saves `trainer` after `step` steps of the run `run` into `directory` (created if
    /// needed), collectively.
    public static func save(_ trainer: ShardedDLRM, step: Int, run: RunIdentity, directory: String) throws {
        // Writing may outlast the job's deadline on a slow file system: peers waiting on this
        // rank find it busy, not hung.
        try JobDeadline.busy("saving checkpoint step-\(step)") { try write(trainer, step: step, run: run, directory: directory) }
    }

    /// Loads the newest intact checkpoint of `run` in `directory` into `trainer` (any placement,
    /// any rank count), collectively. Damaged newer checkpoints are passed over and named in
    /// the result; a checkpoint of another run, or none intact, throws on every rank with one
    /// message.
    public static func resume(into trainer: ShardedDLRM, run: RunIdentity, directory: String) throws -> Resumption {
        try JobDeadline.busy("reading checkpoints") { try resumeNewestIntact(into: trainer, run: run, directory: directory) }
    }

    /// Loads the checkpoint of `step` in `directory` into `trainer`, collectively; throws on
    /// every rank with one message when it is damaged or of another run.
    public static func load(into trainer: ShardedDLRM, run: RunIdentity, directory: String, step: Int) throws {
        let path = "\(directory)/step-\(step)"
        do { try JobDeadline.busy("reading checkpoint step-\(step)") { try load(into: trainer, run: run, from: path, step: step) } }
        catch let damage as Damage { throw ConfigError("\(path): damaged checkpoint: \(damage.problem)") }
    }

    /// `save`, under the busy declaration.
    private static func write(_ trainer: ShardedDLRM, step: Int, run: RunIdentity, directory: String) throws {
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
        let mine = try world.agreeing {
            try write(framed(shardBytes(trainer.embeddings.shards + (trainer.replicas?.shards ?? []))),
                      to: partial.appendingPathComponent(rankFile(world.rank)))
        }
        let checks = try world.allgather([UInt64(mine.bytes), UInt64(mine.crc32c)])
        try world.agreeing {
            guard world.rank == 0 else { return }
            var files = [denseFile: try write(framed(denseBytes(trainer.model)), to: partial.appendingPathComponent(denseFile))]
            for rank in 0..<world.size {
                files[rankFile(rank)] = FileCheck(bytes: Int(checks[2 * rank]), crc32c: UInt32(checks[2 * rank + 1]))
            }
            var manifest = Manifest(formatVersion: formatVersion, step: step, run: run, config: trainer.config,
                                    embeddingOptimizer: trainer.embeddings.optimizer, denseOptimizer: trainer.model.denseOptimizer.kind,
                                    shardsByRank: trainer.shardsByRank,
                                    replicatedTables: trainer.replicatedTables.isEmpty ? nil : trainer.replicatedTables, files: files)
            manifest.checksum = try manifest.ownChecksum()
            _ = try write(manifestEncoder.encode(manifest), to: partial.appendingPathComponent(manifestFile))
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
        complete(in: directory).first
    }

    /// Removes all but the `keeping` newest complete checkpoints in `directory` (on one rank).
    /// Called after a save, so the newest, just written and checked by its writers, stays.
    public static func prune(in directory: String, keeping: Int) throws {
        precondition(keeping >= 1)
        for old in complete(in: directory).dropFirst(keeping) {
            do { try FileManager.default.removeItem(atPath: old.path) } catch {
                throw ConfigError("\(old.path): cannot remove an old checkpoint (\(error.localizedDescription))")
            }
        }
    }

    /// `resume`, newest candidate first.
    private static func resumeNewestIntact(into trainer: ShardedDLRM, run: RunIdentity, directory: String) throws -> Resumption {
        var skipped: [(path: String, problem: String)] = []
        for candidate in complete(in: directory) {
            do {
                try load(into: trainer, run: run, from: candidate.path, step: candidate.step)
                return Resumption(path: candidate.path, step: candidate.step, skipped: skipped)
            } catch let damage as Damage {
                skipped.append((candidate.path, damage.problem))
            }
        }
        guard skipped.isEmpty else {
            throw ConfigError("\(directory): no intact checkpoint to resume from ("
                              + skipped.map { "\(URL(fileURLWithPath: $0.path).lastPathComponent): \($0.problem)" }.joined(separator: "; ") + ")")
        }
        throw ConfigError("\(directory): no complete checkpoint to resume from")
    }

    // MARK: - Internals

    /// A checkpoint that is not as its save left it: a newer one may be passed over for an older.
    private struct Damage: Error {
        let problem: String
    }

    private static let manifestFile = "manifest.json", denseFile = "dense.bin"
    private static func rankFile(_ rank: Int) -> String { "rank-\(rank).bin" }

    private static var manifestEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }

    /// Every `step-<N>` directory with a manifest, newest first, the step read from the name.
    private static func complete(in directory: String) -> [(path: String, step: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let steps = names.compactMap { name -> Int? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)), step >= 0 else { return nil }
            return FileManager.default.fileExists(atPath: "\(directory)/\(name)/\(manifestFile)") ? step : nil
        }
        return steps.sorted(by: >).map { ("\(directory)/step-\($0)", $0) }
    }

    /// Checks the checkpoint at `path` on every rank, each rank reading its share of the files,
    /// then loads it. Damage throws `Damage` on every rank; another run or model a `ConfigError`.
    private static func load(into trainer: ShardedDLRM, run: RunIdentity, from path: String, step: Int) throws {
        let world = trainer.world
        let manifest: Manifest
        do {
            manifest = try world.agreeing { try readManifest(path, step: step, config: trainer.config) }
        } catch let error as ConfigError { throw Damage(problem: error.description) }
        try checkSameRun(manifest, as: trainer, run: run, path: path)
        do {
            try world.agreeing {
                for (k, name) in manifest.files.keys.sorted().enumerated() where k % world.size == world.rank {
                    try verify("\(path)/\(name)", name: name, against: manifest.files[name]!)
                }
            }
        } catch let error as ConfigError { throw Damage(problem: error.description) }
        try world.agreeing {
            try loadDense(into: trainer.model, from: "\(path)/\(denseFile)")
            try loadShards(into: trainer.embeddings.shards + (trainer.replicas?.shards ?? []), manifest: manifest, path: path)
        }
    }

    /// Refuses, naming what differs, a checkpoint that another run saved.
    private static func checkSameRun(_ manifest: Manifest, as trainer: ShardedDLRM, run: RunIdentity, path: String) throws {
        var differences: [String] = []
        if manifest.run.seed != run.seed { differences.append("--seed \(manifest.run.seed) there, \(run.seed) here") }
        if manifest.config != trainer.config { differences.append("another model (MLPs or tables' rows and dims)") }
        else if manifest.run.tables != run.tables { differences.append("other table specs (pooling, bag sizes or reuse)") }
        if manifest.embeddingOptimizer != trainer.embeddings.optimizer || manifest.denseOptimizer != trainer.model.denseOptimizer.kind {
            differences.append("--optimizer \(manifest.denseOptimizer.rawValue) there, \(trainer.model.denseOptimizer.kind.rawValue) here")
        }
        guard differences.isEmpty else {
            throw ConfigError("\(path): a checkpoint of another run: \(differences.joined(separator: "; "))")
        }
    }

    /// Problems of one data file against its manifest entry, as a `ConfigError` naming the file.
    private static func verify(_ path: String, name: String, against check: FileCheck) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw ConfigError("\(name) is missing or unreadable")
        }
        guard data.count == check.bytes else {
            throw ConfigError("\(name) holds \(data.count) bytes, \(check.bytes) saved")
        }
        let crc = CRC32C.checksum(data)
        guard crc == check.crc32c else {
            throw ConfigError("\(name) fails its checksum (CRC32C \(hex(crc)), \(hex(check.crc32c)) saved)")
        }
    }

    private static func hex(_ value: UInt32) -> String { String(format: "%08x", value) }

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

    /// Writes `data` to `url` and returns what the manifest records of it.
    @discardableResult
    private static func write(_ data: Data, to url: URL) throws -> FileCheck {
        do { try data.write(to: url, options: .atomic) } catch {
            throw ConfigError("\(url.path): cannot write (\(error.localizedDescription))")
        }
        return FileCheck(bytes: data.count, crc32c: CRC32C.checksum(data))
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

    /// The manifest of the checkpoint of `step` at `path`, checked against itself, its step and
    /// the shape of `config` before anything trusts it; every problem is a `ConfigError`.
    private static func readManifest(_ path: String, step: Int, config: DLRMConfig) throws -> Manifest {
        guard let data = FileManager.default.contents(atPath: "\(path)/\(manifestFile)") else {
            throw ConfigError("\(manifestFile) is missing or unreadable")
        }
        guard let version = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["formatVersion"] as? Int else {
            throw ConfigError("\(manifestFile) is not a checkpoint manifest")
        }
        guard version == formatVersion else {
            throw ConfigError("\(manifestFile) is of format version \(version); this build reads version \(formatVersion)")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw ConfigError("\(manifestFile): \(JSONProblem.describe(error))")
        }
        guard let saved = manifest.checksum, let crc = try? manifest.ownChecksum(), crc == saved else {
            throw ConfigError("\(manifestFile) fails its checksum (edited or damaged)")
        }
        guard manifest.step == step else {
            throw ConfigError("\(manifestFile) is of step \(manifest.step), its directory of step \(step)")
        }
        // The shape is checked only for the model it was saved with; another model is refused later.
        guard manifest.config == config else { return manifest }
        let tables = config.tables
        for spec in manifest.blocksByRank.joined() {
            guard tables.indices.contains(spec.table), spec.columns.lowerBound >= 0, spec.columns.upperBound <= tables[spec.table].dim,
                  !spec.columns.isEmpty, spec.rowRange(of: tables[spec.table]).clamped(to: 0..<tables[spec.table].rows).count
                      == spec.rowRange(of: tables[spec.table]).count
            else { throw ConfigError("\(manifestFile) places a block outside the model's tables (table \(spec.table))") }
        }
        let expected = Set([denseFile] + manifest.shardsByRank.indices.map(rankFile))
        guard Set(manifest.files.keys) == expected else {
            throw ConfigError("\(manifestFile) lists the files \(manifest.files.keys.sorted()), not \(expected.sorted())")
        }
        return manifest
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
