import Distributed
import Foundation
import Models
import TestSupport
import Testing

/// Checkpoints damaged the ways disks, copies and hands damage them: each is caught before it
/// is trained on, and resuming passes over it to the newest intact checkpoint, or refuses a
/// checkpoint of another run, in one line.
@Suite(.serialized) struct CheckpointIntegrityTests {
    /// One way to damage the step-40 checkpoint of a run that also saved step 20, and the
    /// words that must name it.
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case flippedBitInAShard, flippedFloatInTheDenseFile, truncatedShard, missingDenseFile, shardOfAnOlderStep,
             shardOfAnotherRun, manifestStepEdited, manifestNegativeStep, manifestUnknownTable, manifestCut,
             directoryRenamed, formatOfAnotherBuild

        var testDescription: String { rawValue }

        /// Applies the damage under `directory`; returns the damaged checkpoint's directory.
        func apply(_ directory: URL, otherRun: URL) throws -> URL {
            let newest = directory.appendingPathComponent("step-40")
            let shard = newest.appendingPathComponent("rank-0.bin"), manifest = newest.appendingPathComponent("manifest.json")
            let fileManager = FileManager.default
            switch self {
            case .flippedBitInAShard: try Self.edit(shard) { $0[$0.count / 2] ^= 0x10 }
            case .flippedFloatInTheDenseFile:
                let huge = Array(withUnsafeBytes(of: Float(1e9).bitPattern.littleEndian, Array.init))
                try Self.edit(newest.appendingPathComponent("dense.bin")) { $0.replaceSubrange(64..<68, with: huge) }
            case .truncatedShard: try Self.edit(shard) { $0.removeLast(4096) }
            case .missingDenseFile: try fileManager.removeItem(at: newest.appendingPathComponent("dense.bin"))
            case .shardOfAnOlderStep:
                try fileManager.removeItem(at: shard)
                try fileManager.copyItem(at: directory.appendingPathComponent("step-20/rank-0.bin"), to: shard)
            case .shardOfAnotherRun:
                try fileManager.removeItem(at: shard)
                try fileManager.copyItem(at: otherRun.appendingPathComponent("step-40/rank-0.bin"), to: shard)
            case .manifestStepEdited: try Self.replace(in: manifest, "\"step\" : 40", with: "\"step\" : 30")
            case .manifestNegativeStep: try Self.replace(in: manifest, "\"step\" : 40", with: "\"step\" : -5")
            case .manifestUnknownTable: try Self.replace(in: manifest, "\"table\" : 1\n", with: "\"table\" : 99\n")
            case .manifestCut: try Self.edit(manifest) { $0.removeLast($0.count / 2) }
            case .directoryRenamed:
                let renamed = directory.appendingPathComponent("step-50")
                try fileManager.moveItem(at: newest, to: renamed)
                return renamed
            case .formatOfAnotherBuild: try Self.replace(in: manifest, "\"formatVersion\" : 2", with: "\"formatVersion\" : 1")
            }
            return newest
        }

        static func edit(_ url: URL, _ change: (inout Data) -> Void) throws {
            var data = try Data(contentsOf: url)
            change(&data)
            try data.write(to: url)
        }

        static func replace(in manifest: URL, _ text: String, with new: String) throws {
            let json = try String(contentsOf: manifest, encoding: .utf8)
            precondition(json.contains(text), "manifest lacks \(text)")
            try Data(json.replacingOccurrences(of: text, with: new).utf8).write(to: manifest)
        }

        var problem: String {
            switch self {
            case .flippedBitInAShard, .shardOfAnOlderStep, .shardOfAnotherRun: "rank-0.bin fails its checksum"
            case .flippedFloatInTheDenseFile: "dense.bin fails its checksum"
            case .truncatedShard: "rank-0.bin holds"
            case .missingDenseFile: "dense.bin is missing"
            case .manifestStepEdited, .manifestNegativeStep, .manifestUnknownTable: "manifest.json fails its checksum"
            case .manifestCut: "manifest.json is not a checkpoint manifest"
            case .directoryRenamed: "manifest.json is of step 40, its directory of step 50"
            case .formatOfAnotherBuild: "manifest.json is of format version 1; this build reads version 2"
            }
        }
    }

    /// The events of resuming from `directory`: where it resumed and the damaged checkpoints it
    /// passed over; and the run's summary.
    static func resume(_ directory: URL, steps: Int) throws -> (from: String, skipped: [String], problems: [String], summary: DLRMJob.Summary?) {
        var from = "", skipped: [String] = [], problems: [String] = []
        let summary = try DLRMJobTests.job(steps: steps, checkpoints: directory.path, resume: true).run { event in
            if case .resumed(let path, _, let passed) = event {
                from = path
                skipped = passed.map { $0.path }
                problems = passed.map { $0.problem }
            }
        }
        return (from, skipped, problems, summary)
    }

    /// Saves steps 20 and 40 of the run of `DLRMJobTests` (and of one with another seed), damages
    /// step 40, and resumes: the damage is named, step 20 is loaded, and the run ends as the
    /// uninterrupted run does.
    @Test(arguments: Damage.allCases)
    func aDamagedCheckpointIsPassedOverForTheNewestIntactOne(_ damage: Damage) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("damaged-checkpoint-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let mine = directory.appendingPathComponent("mine"), other = directory.appendingPathComponent("other")
        _ = try DLRMJobTests.job(steps: 40, checkpoints: mine.path, every: 20).run { _ in }
        if damage == .shardOfAnotherRun { _ = try DLRMJobTests.job(steps: 40, checkpoints: other.path, seed: 6).run { _ in } }
        let damaged = try damage.apply(mine, otherRun: other)
        let resumed = try Self.resume(mine, steps: 60)
        #expect(resumed.from == mine.appendingPathComponent("step-20").path)
        #expect(resumed.skipped == [damaged.path])
        let problem = resumed.problems.first ?? ""
        #expect(problem.hasPrefix(damage.problem), "\(problem)")
        #expect(!problem.contains("\n"))
        let whole = try #require(try DLRMJobTests.job(steps: 60).run { _ in })
        let loss = try #require(resumed.summary).heldOut.loss
        #expect(abs(loss - whole.heldOut.loss) <= 1e-4 * whole.heldOut.loss, "held-out loss \(loss) resumed, \(whole.heldOut.loss) uninterrupted")
    }

    @Test func aCheckpointOfAnotherRunIsRefusedSayingWhatDiffers() throws {
        try withTemporaryDirectory("other-run") { directory in
            _ = try DLRMJobTests.job(steps: 20, checkpoints: directory.path, seed: 6).run { _ in }
            let manifest = directory.appendingPathComponent("step-20/manifest.json")
            let before = try Data(contentsOf: manifest)
            let expected = ConfigError("\(directory.path)/step-20: a checkpoint of another run: --seed 6 there, 5 here")
            #expect(throws: expected) { try Self.resume(directory, steps: 40) }
            #expect(try Data(contentsOf: manifest) == before, "the refused checkpoint is left as it was")
        }
    }

    @Test func noIntactCheckpointStopsNamingEachProblem() throws {
        try withTemporaryDirectory("all-damaged") { directory in
            _ = try DLRMJobTests.job(steps: 40, checkpoints: directory.path, every: 20).run { _ in }
            for step in [20, 40] { try FileManager.default.removeItem(at: directory.appendingPathComponent("step-\(step)/dense.bin")) }
            let expected = ConfigError("\(directory.path): no intact checkpoint to resume from "
                                       + "(step-40: dense.bin is missing or unreadable; step-20: dense.bin is missing or unreadable)")
            #expect(throws: expected) { try Self.resume(directory, steps: 60) }
        }
    }
}
