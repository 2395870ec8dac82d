import Foundation
import Models
import Sharding

/// Judges a plan by training it: `mpitrain dlrm` on the task's tables and rank count, launched
/// as its own MPI job, `steps` warm-up steps and then `steps` measured ones in windows of
/// `window` steps, read back from its metrics file. Every figure is a median over the measured
/// windows, so a slow spell of a shared machine moves it less than a mean: the step time from
/// each window's wall time, and every rank's phases (wall time, and CPU time of the compute
/// phases, which stays honest when ranks outnumber cores and wait for one).
public struct PlanTrainer {
    /// What training one plan measured.
    public struct Measurement: Codable, Sendable {
        /// Wall milliseconds per step: the median window's.
        public var stepMilliseconds: Double
        /// Every rank's phases per step, each the median window's.
        public var ranks: [RankPhases]

        /// The slowest rank's embedding CPU milliseconds per step.
        public var embeddingMilliseconds: Double { ranks.map(\.embeddingCPUMilliseconds).max() ?? 0 }

        /// Field by field, the median of measurements of one plan (equal rank counts).
        public static func median(_ all: [Measurement]) -> Measurement {
            func middle(_ value: (Measurement) -> Double) -> Double { Models.median(all.map(value)) }
            return Measurement(stepMilliseconds: middle(\.stepMilliseconds), ranks: all[0].ranks.indices.map { r in
                RankPhases(embeddingMilliseconds: middle { $0.ranks[r].embeddingMilliseconds },
                           communicationMilliseconds: middle { $0.ranks[r].communicationMilliseconds },
                           denseMilliseconds: middle { $0.ranks[r].denseMilliseconds },
                           embeddingCPUMilliseconds: middle { $0.ranks[r].embeddingCPUMilliseconds },
                           denseCPUMilliseconds: middle { $0.ranks[r].denseCPUMilliseconds },
                           dataMilliseconds: middle { $0.ranks[r].dataMilliseconds })
            })
        }
    }

    public var steps: Int
    /// Steps per measured window (`steps` is rounded up to a whole number of windows).
    public var window: Int
    /// Starts the training jobs.
    public var jobs: JobLauncher
    public var seed: UInt64

    public init(steps: Int, window: Int = 10, jobs: JobLauncher, seed: UInt64) {
        self.window = max(1, min(window, steps))
        self.steps = (steps + self.window - 1) / self.window * self.window
        self.jobs = jobs
        self.seed = seed
    }

    /// Trains `plan` for `task` (cat interaction, the task's batch and optimizer) and returns
    /// the medians of the measured windows; a failed job throws with its last error line.
    public func train(_ plan: ShardingPlan, task: PlanningTask) throws -> Measurement {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpitrain-plan-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let tables = directory.appendingPathComponent("tables.json").path, planPath = directory.appendingPathComponent("plan.json").path
        let metrics = directory.appendingPathComponent("metrics.jsonl").path
        try TableSpecFile.write(task.tables, to: tables)
        try plan.write(to: planPath)
        try jobs.run([
            "dlrm", "--tables", tables, "--plan", planPath, "--arch-interaction-op", "cat", "--batch-size", "\(task.batchSize)",
            "--optimizer", task.optimizer == .sgd ? "sgd" : "adagrad", "--steps", "\(2 * steps)", "--print-every", "\(window)",
            "--eval-samples", "\(task.ranks)", "--seed", "\(seed)", "--metrics", metrics,
        ], ranks: task.ranks, what: "training the \(plan.algorithm) plan")
        struct Kind: Decodable { let kind: String }
        struct Record: Decodable {
            let samplesPerSecond: Double?
            let ranks: [RankPhases]?
        }
        // Each kind of record has fields of its own (a config's `ranks` is a count): the kind first.
        let records = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n").map { Data($0.utf8) }
            .filter { try JSONDecoder().decode(Kind.self, from: $0).kind == "train" }
            .map { try JSONDecoder().decode(Record.self, from: $0) }
        let windows = steps / window
        guard records.count == 2 * windows, records.allSatisfy({ $0.samplesPerSecond != nil && $0.ranks?.count == task.ranks }) else {
            throw ConfigError("\(metrics): expected \(2 * windows) training reports of \(task.ranks) ranks, found \(records.count)")
        }
        // Samples per second counts from the first step, so each window's seconds are the
        // difference of the training seconds up to its end and up to the one before.
        let batch = Double(task.batchSize)
        let elapsed = records.indices.map { Double(($0 + 1) * window) * batch / records[$0].samplesPerSecond! }
        let measured = (windows..<2 * windows).map { k in
            Measurement(stepMilliseconds: 1000 * (elapsed[k] - elapsed[k - 1]) / Double(window), ranks: records[k].ranks!)
        }
        return .median(measured)
    }
}
