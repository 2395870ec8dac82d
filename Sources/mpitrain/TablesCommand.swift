import ArgumentParser
import Foundation
import Models
import Sharding

/// `mpitrain tables ...`: synthetic table pools and planning tasks drawn from them.
struct TablesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tables",
        abstract: "Generate a synthetic pool of embedding tables, or planning tasks drawn from one.",
        subcommands: [Pool.self, Tasks.self])

    struct Pool: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A pool of synthetic tables: shaped like the public DLRM traces, or heavy-tailed like production pools.")

        @Option(help: "Tables in the pool.")
        var count = 400

        @Option(help: "dlrm (statistics of the public DLRM traces) or heavy-tailed (a few huge tables beside many tiny ones, pooling up to a few hundred).")
        var shape: TablePool.Shape = .dlrm

        @Option(help: "Seed of every random choice.")
        var seed: UInt64 = 0

        @Option(help: "Write the pool (JSON table specs) here.")
        var out: String

        func validate() throws {
            guard (1...1_000_000).contains(count) else { throw ValidationError("--count must be in 1...1000000, found \(count)") }
        }

        func run() throws {
            let pool = try TablePool.generate(count: count, seed: seed, shape: shape)
            try TableSpecFile.write(pool, to: out)
            let rows = pool.map(\.rows).sorted(), pooling = pool.map(\.poolingFactor).sorted()
            let zipf = pool.filter { if case .zipf = $0.distribution { true } else { false } }.count
            print("\(pool.count) tables: rows \(rows.first!)...\(rows.last!) (median \(rows[rows.count / 2])), "
                  + String(format: "pooling mean %.1f (median %.0f, max %.0f), ", pooling.reduce(0, +) / Double(pool.count),
                           pooling[pooling.count / 2], pooling.last!)
                  + "dims \(Set(pool.map(\.dim)).sorted().map(String.init).joined(separator: "/")), \(zipf) Zipf and \(pool.count - zipf) uniform")
            print("wrote \(out)")
        }
    }

    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Planning tasks (tables, ranks, memory per rank) drawn from one split of a pool.")

        @Option(help: "The pool (from `tables pool`).")
        var pool: String

        @Option(help: "shard-small, shard-mid or shard-large (BENCHMARKS.md), or shard-heavy for a heavy-tailed pool.")
        var preset: String

        @Option(help: "Tasks to draw.")
        var count = 20

        @Option(help: "train (tables the cost model may see) or held-out (tables it never sees).")
        var split: Split = .heldOut

        @Option(help: "Global batch size the costs are for.")
        var batchSize = 512

        @Option(help: "Seed of the split and the draws.")
        var seed: UInt64 = 0

        @Option(help: "Write the tasks here.")
        var out: String

        enum Split: String, ExpressibleByArgument { case train, heldOut = "held-out" }

        func validate() throws {
            guard (1...100_000).contains(count) else { throw ValidationError("--count must be in 1...100000, found \(count)") }
            guard (1...(1 << 30)).contains(batchSize) else { throw ValidationError("--batch-size must be in 1...\(1 << 30), found \(batchSize)") }
        }

        func run() throws {
            let preset = try TaskPreset.named(preset)
            let (train, heldOut) = TablePool.split(try TableSpecFile.read(pool), seed: seed)
            let tasks = try preset.draw(count: count, from: split == .train ? train : heldOut, batchSize: batchSize, seed: seed)
            try JSONFile.write(tasks, to: out)
            print("\(tasks.count) \(preset.name) tasks from the \(split.rawValue) split (\(split == .train ? train.count : heldOut.count) tables): "
                  + "\(preset.ranks) ranks, memory per rank \(Int(preset.memoryFraction * 100))% of each task's tables")
            if preset.cutsRows {
                let cut = tasks.filter { task in task.tables.indices.contains { task.bytes(ofTable: $0) > task.memoryPerRank } }.count
                print("\(cut) of them hold a table larger than a rank, which every planner must cut by rows")
            }
            print("wrote \(out)")
        }
    }
}

extension TablePool.Shape: ExpressibleByArgument {}

/// Task files: a JSON list of planning tasks.
enum TaskFile {
    /// The tasks of `path`, with `dataParallelBytes` (when given) as every task's threshold.
    static func read(_ path: String, dataParallelBytes: Int?) throws -> [PlanningTask] {
        try read(path).map { task in
            var task = task
            if let dataParallelBytes { task.dataParallelBytes = dataParallelBytes }
            return task
        }
    }

    static func read(_ path: String) throws -> [PlanningTask] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw PlanError("\(path): cannot read (\(error.localizedDescription))") }
        let tasks: [PlanningTask]
        do { tasks = try JSONDecoder().decode([PlanningTask].self, from: data) }
        catch let error as PlanError { throw PlanError("\(path): \(error)") }
        catch { throw PlanError("\(path): \(JSONProblem.describe(error))") }
        for (i, task) in tasks.enumerated() where task.ranks < 1 || task.memoryPerRank < 1 || task.batchSize < 1 {
            throw PlanError("\(path): task \(i): ranks, memoryPerRank and batchSize must be positive")
        }
        return tasks
    }
}
