import ArgumentParser
import Distributed
import Foundation
import Models
import Sharding

/// `mpitrain costs ...`: NeuroShard's cost data, measured on this machine, and its model.
struct CostsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "costs",
        abstract: "Measure shard costs on this machine and train NeuroShard's cost model on them.",
        subcommands: [Reference.self, Collect.self, Train.self, Refine.self, Calibrate.self])

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time the oracle's speed reference workload (beside a copy of itself, as the oracle runs it) and write its typical (median) time on both clocks.")

        @Option(help: "Rounds to time; the median is kept.")
        var rounds = 500

        @Option(help: "Write the reference here.")
        var out: String

        func validate() throws {
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        }

        func run() throws {
            try OutputPaths.checkFile(out, "speed reference")
            let start = ContinuousClock.now
            var reference = SpeedReference.measure(rounds: rounds)
            reference.hardware = .measured()
            try reference.write(to: out)
            print(String(format: "speed reference: median %.3f ms per-thread CPU time, %.3f ms wall time, over %d rounds (%.0f s); wrote %@",
                         reference.cpuMilliseconds!, reference.milliseconds, rounds, (ContinuousClock.now - start).seconds, out))
        }
    }

    struct Collect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure random shard sets of 1 to --max-tables tables from a pool's training (or held-out) split with the cost oracle.")

        @Option(help: "The pool (from `tables pool`).")
        var pool: String

        @Flag(help: "Measure sets of the pool's held-out tables instead, to test a model on tables it never saw.")
        var heldOut = false

        @Option(help: "Shard sets to measure.")
        var count = 600

        @Option(help: "Global batch size of the measurements.")
        var batchSize = 512

        @Option(help: "Tables in the largest set.")
        var maxTables = NeuroShardCostModel.defaultMaxTables

        @Option(help: "Seed of the split (as `tables tasks`) and of the sets.")
        var seed: UInt64 = 0

        @Option(help: "Write the records here.")
        var out: String

        @OptionGroup var oracleOptions: PlanCommand.OracleOptions

        func run() throws {
            try OutputPaths.checkFile(out, "records file")
            guard maxTables >= 1 else { throw PlanError("--max-tables \(maxTables): a set holds at least one table") }
            let (train, test) = TablePool.split(try TableSpecFile.read(pool), seed: seed)
            let oracle = try oracleOptions.oracle(batchSize: batchSize, communication: CommunicationCostModel(tables: [:]), seed: seed)
            let start = ContinuousClock.now
            var reported = 0
            let eta = ETA(total: count)
            var data = NeuroShardCostModel.collect(from: heldOut ? test : train, count: count, maxTables: maxTables, oracle: oracle, seed: seed) { done in
                if done / 100 > reported { reported = done / 100; print("measured \(done)/\(count) sets, \(eta.text(done: done))"); fflush(nil) }
            }
            data.hardware = .measured()
            try JSONFile.write(data, to: out)
            print(String(format: "measured %d shard sets at batch %d in %.0f s; wrote %@", count, batchSize,
                         (ContinuousClock.now - start).seconds, out))
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fit the cost model to measured records and report its error on held-out records.")

        @Option(help: "Records from `costs collect`.")
        var data: String

        @Option(help: "Epochs of Adam.")
        var epochs = 150

        @Option(help: "Fraction of the records held out to report the error.")
        var heldOut = 0.2

        @Option(help: "Seed of the weights, the split and the mini-batches.")
        var seed: UInt64 = 0

        @Option(help: "Networks in the ensemble, each started from its own seed (seed, seed+1, ...).")
        var members = 1

        @Option(help: "Standard deviations of the networks' disagreement the search adds to a rank's predicted cost, stored with the model.")
        var uncertaintyWeight = 0.0

        @Option(help: "Records of sets of tables the model never sees in training (from `costs collect --held-out`), to report its error on them too.")
        var unseen: String?

        @Option(help: "Write the model here.")
        var out: String

        func validate() throws {
            guard (1...64).contains(members) else { throw ValidationError("--members \(members): give 1 to 64 networks") }
            guard uncertaintyWeight.isFinite, uncertaintyWeight >= 0 else {
                throw ValidationError("--uncertainty-weight \(uncertaintyWeight): give a number of standard deviations, 0 or more")
            }
        }

        func run() throws {
            try OutputPaths.checkFile(out, "cost model")
            let dataset = try NeuroShardCostModel.Dataset.read(data)
            guard dataset.records.count >= 10 else { throw PlanError("\(data): \(dataset.records.count) records; at least 10 are needed") }
            let unseenRecords = try unseen.map { path throws(PlanError) in
                let unseen = try NeuroShardCostModel.Dataset.read(path)
                guard unseen.batchSize == dataset.batchSize else {
                    throw PlanError("\(path): measured at batch \(unseen.batchSize), the training records at \(dataset.batchSize)")
                }
                return unseen.records
            }
            var random = SplitMix64(seed: seed, stream: "cost-split")
            let order = dataset.records.indices.shuffled(using: &random)
            let cut = Int(Double(order.count) * heldOut)
            let test = order.prefix(cut).map { dataset.records[$0] }, fit = order.dropFirst(cut).map { dataset.records[$0] }
            let model = NeuroShardCostModel(batchSize: dataset.batchSize, members: members, uncertaintyWeight: uncertaintyWeight, seed: seed)
            model.lastLevelCacheBytes = dataset.lastLevelCacheBytes ?? model.lastLevelCacheBytes
            let start = ContinuousClock.now
            let losses = model.train(fit, epochs: epochs, seed: seed)
            let trainError = model.medianError(fit), testErrors = test.isEmpty ? nil : CostCalibration.errors(of: model, on: test)
            print(String(format: "trained %d network%@ on %d sets for %d epochs in %.1f s: loss %.4f -> %.4f; median error %.1f%% on them",
                         members, members == 1 ? "" : "s", fit.count, epochs, (ContinuousClock.now - start).seconds, losses.first ?? 0, losses.last ?? 0, 100 * trainError))
            if let testErrors {
                print(String(format: "median absolute error on %d held-out sets: %.1f%%", test.count, 100 * testErrors.all))
                // The planner's bottleneck ranks are the costliest sets: report them apart.
                print(String(format: "median absolute error on the costliest quarter of them (%d sets): %.1f%%", max(test.count / 4, 1),
                             100 * testErrors.costliest))
            }
            let testError = testErrors?.all
            let unseenError = unseenRecords.map { model.medianError($0) }
            if let unseenError, let unseenRecords {
                print(String(format: "median absolute error on %d sets of unseen tables: %.1f%%", unseenRecords.count, 100 * unseenError))
            }
            model.hardware = dataset.hardware
            try model.write(to: out, heldOutMedianError: testError, unseenTablesMedianError: unseenError)
            print("wrote \(out)")
        }
    }

    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the shipped cost models to this machine within a time budget: re-time the speed reference, measure shard sets, fine-tune the NeuroShard model and DreamShard's cost network on them and write a cost set with this machine's fingerprint (use it with MPITRAIN_RESOURCES=DIR).")

        @Option(help: "Wall time for the whole calibration: 300, 300s, 5m.")
        var budget = "5m"

        @Option(help: "Tables to draw shard sets from (from `tables pool`; default: a pool of 400 drawn with --seed).")
        var pool: String?

        @Option(help: "NeuroShard model to start from (default: the shipped one).")
        var costModel: String?

        @Option(help: "Seed of the pool, the split and the sets.")
        var seed: UInt64 = 0

        @Option(help: "Write the cost set into this directory (replaced only once the new set is complete).")
        var out: String

        @Option(help: "Re-measure the all-to-all calibration on this many ranks (repeatable; default: keep the shipped ones).")
        var ranks: [Int] = []

        @Option(help: "With --ranks: the hosts to measure it across (as `launch run --hostfile` takes them).")
        var hostfile: String?

        @OptionGroup var launcher: LauncherOptions

        @Option(help: "DreamShard model to start from (default: the shipped one).")
        var dreamshardModel: String?

        /// `--budget` in seconds.
        func budgetSeconds() throws -> Double {
            let units: [(suffix: String, seconds: Double)] = [("min", 60), ("m", 60), ("s", 1), ("h", 3600)]
            let unit = units.first { budget.hasSuffix($0.suffix) }
            guard let value = Double(budget.dropLast(unit?.suffix.count ?? 0)), value.isFinite, value > 0, value <= 86_400 * 7 else {
                throw ValidationError("--budget '\(budget)': expected a positive time such as 300, 300s or 5m")
            }
            return value * (unit?.seconds ?? 1)
        }

        func validate() throws {
            guard try budgetSeconds() >= 30 else { throw ValidationError("--budget \(budget): a calibration needs at least 30 s") }
            if let bad = ranks.first(where: { !(2...65536).contains($0) }) { throw ValidationError("--ranks \(bad): an all-to-all needs 2...65536 ranks") }
            if hostfile != nil && ranks.isEmpty { throw ValidationError("--hostfile goes with --ranks") }
        }

        func run() throws {
            try OutputPaths.checkDirectory(out, "cost set")
            let seconds = try budgetSeconds(), start = ContinuousClock.now
            let tables = try pool.map { try TableSpecFile.read($0) } ?? TablePool.generate(count: 400, seed: seed)
            let modelPath = try costModel ?? ShippedResources.file("neuroshard-cost-model", kind: "NeuroShard cost model")
            let dreamShardPath = try dreamshardModel ?? ShippedResources.file("dreamshard-model", kind: "DreamShard model")
            var calibration = MachineCalibration(budgetSeconds: seconds, jobs: launcher.jobs(hostfile: hostfile), seed: seed)
            calibration.ranks = ranks
            print("calibrating on \(HardwareFingerprint.current.summary), \(ETA.duration(seconds)) budget"); fflush(nil)
            var reported = -Double.infinity
            let copied = try calibration.run(modelAt: modelPath, dreamShardAt: dreamShardPath, pool: tables, into: out) { event in
                switch event {
                case .communicationMeasured(let count):
                    print("all-to-all calibration on \(count) ranks measured")
                case .speedReference(let reference):
                    print(String(format: "speed reference: median %.3f ms per-thread CPU time over %d rounds", reference.cpuMilliseconds ?? 0, reference.rounds))
                case .measured(let sets, let left):
                    // A line every 30 s of measuring, and the last.
                    let spent = (ContinuousClock.now - start).seconds
                    guard spent - reported >= 30 || left == 0 else { return }
                    reported = spent
                    print("measured \(sets) shard sets, \(ETA.duration(left)) of measuring left")
                case .fineTuned(let outcome):
                    print(String(format: "fine-tuned on %d sets; median per-rank error on %d held-out sets of unseen tables: %.1f%% -> %.1f%% "
                                 + "(costliest quarter %.1f%% -> %.1f%%)", outcome.tuning.records.count, outcome.heldOut.count,
                                 100 * outcome.before.all, 100 * outcome.after.all, 100 * outcome.before.costliest, 100 * outcome.after.costliest))
                case .dreamShardFineTuned(let outcome):
                    print(String(format: "DreamShard cost network fine-tuned on the same sets; on the held-out ones: per-rank %.1f%% -> %.1f%% "
                                 + "(costliest quarter %.1f%% -> %.1f%%), step cost of plans of them %.1f%% -> %.1f%%",
                                 100 * outcome.before.perRank, 100 * outcome.after.perRank, 100 * outcome.before.costliest,
                                 100 * outcome.after.costliest, 100 * outcome.before.step, 100 * outcome.after.step))
                case .homeSets(let check?):
                    print(String(format: "on the shipped models' %d held-out sets, measured on %@: NeuroShard %.1f%% -> %.1f%%, DreamShard %.1f%% -> %.1f%%",
                                 check.sets, check.hardware?.summary ?? "an unknown machine", 100 * check.before.neuroShard,
                                 100 * check.after.neuroShard, 100 * check.before.dreamShard, 100 * check.after.dreamShard))
                case .homeSets(nil):
                    print("no \(MachineCalibration.homeSetsName).json among the cost files: not checked against the sets the shipped models were judged on")
                }
                fflush(nil)
            }
            print(String(format: "wrote %@ in %.0f s (as shipped: %@)", out, (ContinuousClock.now - start).seconds,
                         copied.joined(separator: ", ")))
        }
    }

    struct Refine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retrain the cost model, round after round, on measurements of the plans its own search picks for tasks from a pool's training split.")

        @Option(help: "Records from `costs collect` to start from.")
        var data: String

        @Option(help: "The pool (from `tables pool`); tasks use its training split only.")
        var pool: String

        @Option(help: "Rounds of plan, measure, retrain.")
        var rounds = 3

        @Option(help: "Tasks planned and measured per round, half shard-small-like (2 ranks), half shard-mid-like (4 ranks).")
        var tasks = 40

        @Option(help: "Epochs of Adam per retraining.")
        var epochs = 150

        @Option(help: "Seed of the split, the tasks and the weights.")
        var seed: UInt64 = 0

        @Option(help: "Write the model here.")
        var out: String

        @Option(help: "Also write all records, the measured plans' included, here.")
        var dataOut: String?

        @OptionGroup var oracleOptions: PlanCommand.OracleOptions

        func validate() throws {
            guard rounds >= 1, tasks >= 2, epochs >= 1 else { throw ValidationError("--rounds and --epochs must be at least 1, --tasks at least 2") }
        }

        func run() throws {
            for path in [out] + [dataOut].compactMap({ $0 }) { try OutputPaths.checkFile(path, "output") }
            var dataset = try NeuroShardCostModel.Dataset.read(data)
            let (train, _) = TablePool.split(try TableSpecFile.read(pool), seed: seed)
            let communication = try CommunicationCostModel.shipped()
            let oracle = try oracleOptions.oracle(batchSize: dataset.batchSize, communication: communication, seed: seed)
            let roundTasks = try (0..<rounds).map { round in
                try ["shard-small", "shard-mid"].flatMap { name throws(PlanError) in
                    try TaskPreset.named(name).draw(count: tasks / 2, from: train, batchSize: dataset.batchSize, seed: seed &+ UInt64(round + 1))
                }
            }
            var model = NeuroShardCostModel(batchSize: dataset.batchSize, seed: seed)
            model.train(dataset.records, epochs: epochs, seed: seed)
            print([pad("round", 5), pad("plans", 5), pad("predicted ms", 12), pad("measured ms", 11), pad("median error", 12), pad("records", 7)]
                .joined(separator: " "))
            let eta = ETA(total: rounds)
            for round in 0..<rounds {
                let own = try model.measureOwnPlans(roundTasks[round], communication: communication, oracle: oracle)
                dataset.records += own.records
                let errors = zip(own.predicted, own.measured).map { abs($0 - $1) / $1 }.sorted()
                print([pad("\(round + 1)", 5), pad("\(own.measured.count)", 5),
                       pad(fixed(own.predicted.reduce(0, +) / Double(max(own.predicted.count, 1))), 12),
                       pad(fixed(own.measured.reduce(0, +) / Double(max(own.measured.count, 1))), 11),
                       pad(errors.isEmpty ? "-" : String(format: "%.1f%%", 100 * errors[errors.count / 2]), 12),
                       pad("\(dataset.records.count)", 7), eta.text(done: round + 1)].joined(separator: " "))
                fflush(nil)
                model = NeuroShardCostModel(batchSize: dataset.batchSize, seed: seed)
                model.train(dataset.records, epochs: epochs, seed: seed)
            }
            model.hardware = dataset.hardware
            try model.write(to: out, heldOutMedianError: nil, unseenTablesMedianError: nil)
            if let dataOut { try JSONFile.write(dataset, to: dataOut) }
            print("wrote \(out)")
        }
    }
}
