import ArgumentParser
import Distributed
import Foundation
import Models
import Sharding

/// `mpitrain plan`: the dry run users make before a job, and `plan eval` over task sets.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Place embedding tables on ranks and print the plan's per-rank memory and predicted cost (no MPI job).",
        subcommands: [DryRun.self, Eval.self, Headroom.self],
        defaultSubcommand: DryRun.self)

    /// The cost model and all-to-all calibration the planners and reports use.
    struct ModelOptions: ParsableArguments {
        @Option(help: "NeuroShard cost model (default: the one trained on this machine that ships with MPITrain).")
        var costModel: String?

        @Option(help: "`bench comm --json` reports to calibrate all-to-all costs (default: the shipped ones).")
        var commCalibration: [String] = []

        func communication() throws(PlanError) -> CommunicationCostModel {
            commCalibration.isEmpty ? try CommunicationCostModel.shipped() : try CommunicationCostModel(reports: commCalibration)
        }

        @Option(help: "Standard deviations of the NeuroShard ensemble's disagreement its search adds to a rank's predicted cost (default: the model's own).")
        var neuroshardUncertainty: Double?

        @Option(help: "DreamShard model (default: the one trained on this machine that ships with MPITrain).")
        var dreamshardModel: String?

        func validate() throws {
            if let neuroshardUncertainty, !(neuroshardUncertainty.isFinite && neuroshardUncertainty >= 0) {
                throw ValidationError("--neuroshard-uncertainty \(neuroshardUncertainty): give a number of standard deviations, 0 or more")
            }
        }

        func neuroShard() throws(PlanError) -> NeuroShardCostModel {
            let model = if let costModel { try NeuroShardCostModel.read(costModel) } else { try NeuroShardCostModel.shipped() }
            if let neuroshardUncertainty { model.uncertaintyWeight = neuroshardUncertainty }
            return model
        }

        func dreamShard() throws(PlanError) -> DreamShardModel {
            if let dreamshardModel { return try DreamShardModel.read(dreamshardModel) }
            return try DreamShardModel.shipped()
        }

        var learned: LearnedModels { LearnedModels(neuroShard: neuroShard, dreamShard: dreamShard) }

        @Flag(help: "Stop when a cost model or calibration the plan relies on was measured on another machine, or on an unknown one, instead of planning with it.")
        var strictHardware = false

        /// One line per cost artefact behind `planners`' plans and the predictions that was
        /// measured on a machine unlike this one; with --strict-hardware, the first one is an error.
        func hardwareNotes(planners: [String]) throws -> [String] {
            var artefacts: [(kind: String, hardware: HardwareFingerprint?, remeasure: String)] = [
                ("all-to-all calibration", try communication().hardware, "`mpitrain costs calibrate --ranks N --out DIR` (then MPITRAIN_RESOURCES=DIR)")]
            if let model = try? neuroShard() {
                artefacts.append(("NeuroShard cost model", model.hardware, "`mpitrain costs calibrate --out DIR` (then MPITRAIN_RESOURCES=DIR)"))
            }
            if planners.contains("dreamshard") {
                artefacts.append(("DreamShard model", try dreamShard().provenance?.hardware, "`mpitrain costs calibrate --out DIR` (then MPITRAIN_RESOURCES=DIR)"))
            }
            let notes = artefacts.compactMap { HardwareFingerprint.note($0.kind, measuredOn: $0.hardware, remeasure: $0.remeasure) }
            if strictHardware, let first = notes.first { throw PlanError(first + " (--strict-hardware)") }
            return notes.map { "hardware: " + $0 }
        }
    }

    /// The sharding types the heuristics may use beyond table-wise and row-wise.
    struct ShardingTypeOptions: ParsableArguments {
        @Option(help: "Replicate tables of at most this size (optimizer state included) on every rank, data-parallel, e.g. 64KiB (heuristic planners; default: none).")
        var dpBelow: String?

        func dataParallelBytes() throws(PlanError) -> Int? { try dpBelow.map { text throws(PlanError) in try ByteCount(parsing: text).bytes } }
    }

    /// How the cost oracle scales its measurements.
    struct OracleOptions: ParsableArguments {
        @Option(help: "Speed reference to scale measured times by (from `costs reference`; default: the shipped one).")
        var speedReference: String?

        @Option(help: "How the oracle runs the ranks: isolated (one at a time, cold caches, scaled by the speed reference; comparable across sessions) or concurrent (side by side on threads, warm caches, per-thread CPU time, this machine's milliseconds; what training measures).")
        var oracleConditions: CostOracle.Conditions = .isolated

        @Option(help: "The isolated oracle's clock: cpu (per-thread CPU time) or wall; both are measured, this one is the cost. Concurrent conditions always use cpu.")
        var oracleClock: CostOracle.Clock = .cpu

        @Option(help: "Rounds the oracle measures (after 2 warm-up rounds) and takes the median of (default: 11 isolated, 25 concurrent).")
        var oracleRounds: Int?

        @Option(help: "Times the isolated oracle builds each rank's shards, at other addresses, timing the builds in the same rounds and taking their mean.")
        var oracleBuilds = 1

        func oracle(batchSize: Int, communication: CommunicationCostModel, seed: UInt64) throws(PlanError) -> CostOracle {
            if let oracleRounds, !(1...10_000).contains(oracleRounds) { throw PlanError("--oracle-rounds must be in 1...10000, found \(oracleRounds)") }
            guard (1...1000).contains(oracleBuilds) else { throw PlanError("--oracle-builds must be in 1...1000, found \(oracleBuilds)") }
            guard oracleBuilds == 1 || oracleConditions == .isolated else {
                throw PlanError("--oracle-builds applies to the isolated oracle; the concurrent one runs a plan's ranks as its training job would")
            }
            var reference: SpeedReference?
            if oracleConditions == .isolated {
                let read = if let speedReference { try SpeedReference.read(speedReference) } else { try SpeedReference.shipped() }
                guard read.milliseconds(on: oracleClock) != nil else {
                    throw PlanError("\(speedReference ?? "the shipped speed reference") has no per-thread CPU time (it predates it): "
                                    + "regenerate it with `costs reference`, or give --oracle-clock wall")
                }
                reference = read
            }
            var oracle = CostOracle(batchSize: batchSize, communication: communication, seed: seed, speedReference: reference,
                                    conditions: oracleConditions, clock: oracleClock)
            oracle.iterations = oracleRounds ?? oracle.iterations
            oracle.builds = oracleBuilds
            return oracle
        }

        /// The clock of the oracle's costs.
        var clock: CostOracle.Clock { CostOracle.clock(oracleClock, under: oracleConditions) }

        /// The conditions and clock, as reports name them.
        var description: String {
            oracleConditions == .concurrent ? "concurrent oracle, per-thread CPU time scaled by its yardstick"
                : "isolated oracle, \(oracleClock == .cpu ? "per-thread CPU time" : "wall time") scaled by the speed reference"
                    + (oracleBuilds > 1 ? ", mean of \(oracleBuilds) builds" : "")
        }
    }

    /// What `plan eval` and `plan headroom` share: the tasks, the planners compared on them,
    /// and the models and oracle that price and measure their plans.
    struct ComparisonOptions: ParsableArguments {
        @Option(help: "Tasks (from `tables tasks`).")
        var tasks: String

        @Option(help: "Planners, comma-separated (default: all).")
        var algos: String = PlannerCatalog.names.joined(separator: ",")

        @Option(help: "Seed of random choices and of the oracle's batches.")
        var seed: UInt64 = 0

        @OptionGroup var models: ModelOptions
        @OptionGroup var oracle: OracleOptions
        @OptionGroup var types: ShardingTypeOptions

        var planners: [String] { algos.split(separator: ",").map(String.init) }

        /// The tasks, each with `--dp-below` as its data-parallel threshold when given.
        func readTasks() throws -> [PlanningTask] { try TaskFile.read(tasks, dataParallelBytes: try types.dataParallelBytes()) }

        /// The planners' evaluation: a fresh oracle per task, predictions by the NeuroShard model.
        func evaluation(repeats: Int, trainer: PlanTrainer? = nil, refining: (planners: Set<String>, budget: Int)? = nil) throws -> PlanEvaluation {
            let communication = try models.communication()
            return PlanEvaluation(
                planners: try planners.map { name throws(PlanError) in
                    try PlannerCatalog.planner(named: name, seed: seed, communication: communication, models: models.learned)
                },
                repeats: repeats, trainer: trainer, refining: refining,
                oracle: { task in try oracle.oracle(batchSize: task.batchSize, communication: communication, seed: seed) },
                predictor: { task in
                    try PlanReport.predictor(models, batch: task.batchSize, communication: communication, optimizer: task.optimizer).model
                })
        }
    }

    struct DryRun: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dry-run",
            abstract: "Plan one set of tables and print the per-rank report (the default subcommand).")

        @Option(help: "Table specs (JSON).")
        var tables: String

        @Option(help: "Ranks to place the tables on.")
        var ranks: Int

        @Option(help: "Embedding memory per rank, e.g. 2GiB.")
        var memory: String

        @Option(help: "Global batch size the costs are for.")
        var batchSize = 512

        @Option(help: "Planner: \(PlannerCatalog.names.joined(separator: ", ")).")
        var planAlgo = "neuroshard"

        @Option(help: "Embedding optimizer whose state counts toward memory: sgd or adagrad.")
        var optimizer: EmbeddingOptimizer = .sgd

        @Option(help: "Seed of random choices.")
        var seed: UInt64 = 0

        @Flag(help: "Also measure the plan with the cost oracle and show it beside the prediction.")
        var measure = false

        @Option(help: "Refine the plan with up to N cost-oracle measurements: moves off the slowest rank, each kept only when the oracle confirms it (0: off).")
        var planRefine = 0

        @Option(help: "With --plan-refine: stop refining after this many seconds.")
        var planRefineSeconds: Double?

        @Option(help: "Write the plan (JSON) here.")
        var out: String?

        /// What `--out` writes.
        enum ExportFormat: String, CaseIterable, ExpressibleByArgument { case native, torchrec }

        @Option(help: "Format of --out: native (the plan JSON `dlrm --plan` reads) or torchrec (TorchRec's ParameterSharding per table: sharding_type, compute_kernel, ranks, shard offsets and sizes).")
        var export: ExportFormat = .native

        @OptionGroup var models: ModelOptions
        @OptionGroup var oracle: OracleOptions
        @OptionGroup var types: ShardingTypeOptions

        func validate() throws {
            guard (1...65536).contains(ranks) else { throw ValidationError("--ranks must be in 1...65536, found \(ranks)") }
            guard (1...(1 << 30)).contains(batchSize) else { throw ValidationError("--batch-size must be in 1...\(1 << 30), found \(batchSize)") }
            if export != .native && out == nil { throw ValidationError("--export \(export.rawValue) needs --out") }
            guard planRefine >= 0 else { throw ValidationError("--plan-refine must be at least 0") }
            if let planRefineSeconds, !(planRefineSeconds > 0) { throw ValidationError("--plan-refine-seconds must be positive") }
        }

        func run() throws {
            if let out { try OutputPaths.checkFile(out, "plan") }
            let task = PlanningTask(tables: try TableSpecFile.read(tables), ranks: ranks, memoryPerRank: try ByteCount(parsing: memory).bytes,
                                    batchSize: batchSize, optimizer: optimizer, dataParallelBytes: try types.dataParallelBytes())
            let communication = try models.communication()
            let hardwareNotes = try models.hardwareNotes(planners: [planAlgo])
            let planner = try PlannerCatalog.planner(named: planAlgo, seed: seed, communication: communication, models: models.learned)
            let start = ContinuousClock.now
            var plan = try planner.plan(task)
            let searchSeconds = (ContinuousClock.now - start).seconds
            try plan.validate(tables: task.tables, memoryPerRank: task.memoryPerRank, optimizer: optimizer)
            let (predictor, source) = try PlanReport.predictor(models, batch: batchSize, communication: communication, planner: planAlgo,
                                                               optimizer: optimizer)
            let oracle = measure || planRefine > 0 ? try self.oracle.oracle(batchSize: batchSize, communication: communication, seed: seed) : nil
            print("plan: \(planAlgo), \(task.tables.count) tables on \(ranks) ranks, \(ByteCount(task.memoryPerRank)) per rank, batch \(batchSize); "
                  + String(format: "searched in %.3f s", searchSeconds))
            for note in hardwareNotes { print(note) }
            var measured = measure ? try oracle?.cost(of: plan, tables: task.tables) : nil
            if let oracle, planRefine > 0 {
                let outcome = try PlanRefinement(task: task, predictor: predictor, budget: planRefine, timeLimit: planRefineSeconds.map { .seconds($0) }) {
                    try oracle.costs(of: $0, tables: task.tables)
                }.refine(plan)
                print(PlanReport.refinement(outcome))
                plan = outcome.plan
                measured = outcome.cost
            }
            print(PlanReport.table(plan, task: task, predicted: try predictor.cost(of: plan, tables: task.tables), predictedBy: source,
                                   measured: measured, oracle: self.oracle.description))
            print(PlanReport.tables(plan, task: task, predictor: predictor))
            if let out {
                switch export {
                case .native: try plan.write(to: out)
                case .torchrec: try plan.torchRec(tables: task.tables).write(to: out)
                }
                print("wrote \(out)" + (export == .native ? "" : " (\(export.rawValue))"))
            }
        }
    }

    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plan every task with every planner, measure each plan with the cost oracle, and compare.")

        @OptionGroup var comparison: ComparisonOptions

        @Option(help: "Also write every task's results as JSON here (rewritten after each task).")
        var json: String?

        @Option(help: "Times each plan is measured (and trained, with --train): the task's plans are measured in turn, pass after pass, and each plan's cost is its median.")
        var repeats = 1

        @Option(help: "Also train every plan: STEPS warm-up and STEPS measured steps (in windows of 10; figures are medians over windows) of `dlrm --tables` on the task's ranks, each its own MPI job (0: off).")
        var train = 0

        @Option(help: "Also refine the learned planners' plans with up to N cost-oracle measurements each, and evaluate them beside the raw ones as <name>+refined (0: off).")
        var planRefine = 0

        @OptionGroup var launcher: LauncherOptions

        func validate() throws {
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
            guard train >= 0 else { throw ValidationError("--train must be at least 0") }
            guard planRefine >= 0 else { throw ValidationError("--plan-refine must be at least 0") }
        }

        func run() throws {
            if let json { try OutputPaths.checkFile(json, "JSON file") }
            let tasks = try comparison.readTasks()
            for note in try comparison.models.hardwareNotes(planners: comparison.planners) { print(note) }
            let learned = Set(comparison.planners).subtracting(PlannerCatalog.heuristics)
            let evaluation = try comparison.evaluation(repeats: repeats, trainer: trainer, refining: planRefine > 0 ? (learned, planRefine) : nil)
            let names = evaluation.names
            var results: [PlanEvaluation.Result] = []
            let eta = ETA(total: tasks.count)
            for (t, task) in tasks.enumerated() {
                let mine = try evaluation.evaluate(task, index: t)
                results += mine
                print("task \(t + 1)/\(tasks.count) (\(eta.text(done: t + 1))): " + mine.map { result in
                    guard let cost = result.measuredMilliseconds else { return "\(result.algorithm) infeasible" }
                    return String(format: "%@ %.2f", result.algorithm, cost)
                        + (result.trained.map { String(format: " (trained %.2f)", $0.stepMilliseconds) } ?? "")
                }.joined(separator: ", "))
                fflush(nil)
                // Written after every task, so a long evaluation stopped early keeps what it measured.
                if let json { try JSONFile.write(results, to: json) }
            }
            print(PlanReport.comparison(PlannerComparison(results, algorithms: names, tasks: tasks.count), oracle: comparison.oracle.description,
                                        clock: comparison.oracle.clock))
            if trainer != nil {
                print(PlanReport.trainingComposition(results, algorithms: names))
                print(PlanReport.trainingAgreement(TrainingAgreement(results, tasks: tasks)))
            }
        }

        /// The plan trainer of `--train`, launching this executable.
        var trainer: PlanTrainer? {
            guard train > 0 else { return nil }
            return PlanTrainer(steps: train, jobs: launcher.jobs(), seed: comparison.seed)
        }
    }

    struct Headroom: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per task, refine the cheapest planner's plan by measurement until no move helps, and show how far every planner is from the plan found (slow).")

        @OptionGroup var comparison: ComparisonOptions

        @Option(help: "Times every plan, and the plan found, is measured in the final passes; each cost is its median.")
        var repeats = 3

        @Option(help: "Oracle measurements the search may make per task.")
        var budget = 300

        @Option(help: "Rounds in a row (of 3 measured candidates each) without a kept move before a task's search ends.")
        var patience = 4

        @Option(help: "Also write every task's plans' costs, the plan found and its moves as JSON here (rewritten after each task).")
        var json: String?


        func validate() throws {
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
            guard budget >= 1, patience >= 1 else { throw ValidationError("--budget and --patience must be at least 1") }
        }

        func run() throws {
            if let json { try OutputPaths.checkFile(json, "JSON file") }
            let tasks = try comparison.readTasks(), names = comparison.planners
            let headroom = try PlanHeadroom(evaluation: try comparison.evaluation(repeats: repeats), budget: budget, patience: patience)
            var results: [PlanHeadroom.Task] = []
            let eta = ETA(total: tasks.count)
            for (t, task) in tasks.enumerated() {
                let result = try headroom.run(task, index: t)
                results.append(result)
                let found = result.costs[PlanHeadroom.found]! ?? 0
                print(String(format: "task %d/%d (%@): found %.2f ms from %@'s plan in %d %@ (%d measurements, %.0f s; %@); ", t + 1, tasks.count,
                             eta.text(done: t + 1), found, result.start, result.steps.count, result.steps.count == 1 ? "move" : "moves", result.measurements, result.seconds, result.stopped)
                      + names.map { name in (result.costs[name] ?? nil).map { String(format: "%@ %+.1f%%", name, 100 * ($0 / found - 1)) } ?? "\(name) infeasible" }
                        .joined(separator: ", "))
                fflush(nil)
                if let json { try JSONFile.write(results, to: json) }
            }
            print(PlanReport.headroom(HeadroomSummary(results, algorithms: names), oracle: comparison.oracle.description))
        }
    }
}

extension EmbeddingOptimizer: ExpressibleByArgument {}
extension CostOracle.Conditions: ExpressibleByArgument {}
extension CostOracle.Clock: ExpressibleByArgument {}

/// The text of plan reports.
enum PlanReport {
    /// What refinement did: the measured step before and after, and every kept move.
    static func refinement(_ outcome: PlanRefinement.Outcome) -> String {
        var lines = [String(format: "refined: %d %@ kept in %d oracle %@, %.1f s (%@); measured step %.2f -> %.2f ms (%+.1f%%)",
                            outcome.steps.count, outcome.steps.count == 1 ? "move" : "moves", outcome.measurements,
                            outcome.measurements == 1 ? "measurement" : "measurements", outcome.seconds, outcome.stopped, outcome.start.total, outcome.cost.total,
                            100 * (outcome.cost.total / outcome.start.total - 1))]
        lines += outcome.steps.map { String(format: "  %@: %.2f -> %.2f ms", $0.move, $0.before, $0.after) }
        return lines.joined(separator: "\n")
    }

    /// Per planner over the headroom tasks (see `HeadroomSummary`).
    static func headroom(_ summary: HeadroomSummary, oracle: String) -> String {
        var lines = ["", String(format: "%d tasks placed by every planner; the plans found average %.2f ms", summary.tasks, summary.found)
                     + (summary.headroom.map { String(format: ", %.1f%% below the best heuristic (%@)", 100 * $0, summary.bestHeuristic ?? "-") } ?? ""),
                     [pad("planner", 18), pad("mean", 8), pad("over found", 10), pad("captured", 9)].joined(separator: " ")]
        for planner in summary.planners {
            lines.append([pad(planner.name, 18), pad(fixed(planner.mean), 8), pad(String(format: "%+.1f%%", 100 * planner.overFound), 10),
                          pad(planner.captured.map { String(format: "%.0f%%", 100 * $0) } ?? "-", 9)].joined(separator: " "))
        }
        lines.append("captured: the share of the found plans' gain over the best heuristic that the planner's plans reach")
        lines.append(repeatSpread(summary.repeatSpread, relative: summary.relativeSpread, oracle: oracle))
        return lines.joined(separator: "\n")
    }

    /// The model that predicts costs in reports (see `LearnedModels.predictor`); the analytic
    /// estimate stands in only when the shipped NeuroShard model is missing.
    static func predictor(_ models: PlanCommand.ModelOptions, batch: Int, communication: CommunicationCostModel,
                          planner: String? = nil, optimizer: EmbeddingOptimizer = .sgd) throws -> (model: any PlanCostModel, source: String) {
        try models.learned.predictor(batch: batch, communication: communication, planner: planner, optimizer: optimizer,
                                     fallBack: models.costModel == nil)
    }

    /// Per rank: memory, shards, predicted (and measured) milliseconds; then the imbalance.
    static func table(_ plan: ShardingPlan, task: PlanningTask, predicted: PlanCost, predictedBy source: String,
                      measured: PlanCost?, oracle: String = "cost oracle") -> String {
        let memory = plan.memoryByRank(tables: task.tables, optimizer: task.optimizer)
        let shards = plan.shardsByRank(tables: task.tables)
        var lines = ["predicted by the \(source)" + (measured == nil ? "" : "; measured by the \(oracle) on this machine") + ", ms per step",
                     [pad("rank", 4), pad("memory", 10), pad("used", 6), pad("whole", 5), pad("split", 5), pad("dp", 3), pad("fwd", 7), pad("bwd", 7),
                      pad("comm", 7), pad("total", 7)].joined(separator: " ")
                        + (measured == nil ? "" : " |" + [pad("fwd", 7), pad("bwd", 7), pad("comm", 7), pad("total", 7)].joined(separator: " "))]
        let replicated = plan.replicatedTables(tables: task.tables).count
        for rank in 0..<plan.ranks {
            let whole = shards[rank].filter { $0.columns.count == task.tables[$0.table].dim && $0.rows == nil }.count
            let p = predicted.ranks[rank]
            var line = [pad("\(rank)", 4), pad(ByteCount(memory[rank]).description, 10),
                        pad(String(format: "%.0f%%", 100 * Double(memory[rank]) / Double(task.memoryPerRank)), 6),
                        pad("\(whole)", 5), pad("\(shards[rank].count - whole)", 5), pad("\(replicated)", 3),
                        pad(fixed(p.forward), 7), pad(fixed(p.backward), 7),
                        pad(fixed(p.communication), 7), pad(fixed(p.total), 7)].joined(separator: " ")
            if let m = measured?.ranks[rank] {
                line += " |" + [pad(fixed(m.forward), 7), pad(fixed(m.backward), 7), pad(fixed(m.communication), 7), pad(fixed(m.total), 7)]
                    .joined(separator: " ")
            }
            lines.append(line)
        }
        let meanMemory = Double(memory.reduce(0, +)) / Double(plan.ranks)
        var summary = String(format: "step %.2f ms predicted (slowest rank), imbalance max/mean %.2f; memory max/mean %.2f",
                             predicted.total, predicted.imbalance, Double(memory.max() ?? 0) / max(meanMemory, 1))
        if let measured {
            summary += String(format: "; measured %.2f ms, imbalance %.2f, prediction error %+.0f%%", measured.total, measured.imbalance,
                              100 * (predicted.total - measured.total) / measured.total)
        }
        return (lines + [summary]).joined(separator: "\n")
    }

    /// Per table, as a TorchRec user reads a plan: its sharding type, the ranks and the rows or
    /// columns each holds, its memory over all ranks and the model's prediction of its shards'
    /// compute (each shard priced alone on a rank; a replicated table's replicas summed over
    /// ranks); then the count of tables per type.
    static func tables(_ plan: ShardingPlan, task: PlanningTask, predictor: any PlanCostModel) -> String {
        let index = Dictionary(uniqueKeysWithValues: task.tables.enumerated().map { ($1.name, $0) })
        let nameWidth = max(5, task.tables.map(\.name.count).max() ?? 0)
        var lines = ["tables: " + plan.tablesByType.map { "\($0.tables) \($0.type.rawValue)" }.joined(separator: ", "),
                     ["table".padding(toLength: nameWidth, withPad: " ", startingAt: 0), pad("type", 13), pad("ranks", 9), pad("memory", 10), pad("fwd+bwd", 8)].joined(separator: " ")
                        + "  held"]
        for placement in plan.placements {
            guard let t = index[placement.table] else { continue }
            let table = task.tables[t]
            let shards = placement.shards.map { EmbeddingShardSpec(table: t, columns: $0.columns, rows: $0.rows == 0..<table.rows ? nil : $0.rows) }
            let memory = placement.dataParallel ? plan.ranks * table.bytes(columns: table.dim, optimizer: task.optimizer)
                : shards.reduce(0) { $0 + table.bytes(of: $1, optimizer: task.optimizer) }
            let ranks = placement.dataParallel ? "all" : Array(Set(placement.shards.map(\.rank))).sorted().map(String.init).joined(separator: ",")
            let compute = placement.dataParallel
                ? Double(plan.ranks) * { $0.forward + $0.backward }(predictor.replicaCompute([t], tables: task.tables, ranks: plan.ranks))
                : predictor.compute(byRank: shards.map { [$0] }, tables: task.tables).reduce(0) { $0 + $1.forward + $1.backward }
            let held: String = switch placement.type {
            case .tableWise: "every row and column"
            case .dataParallel: "a replica on every rank"
            case .columnWise: "columns " + placement.shards.map { "\($0.columns.lowerBound)..<\($0.columns.upperBound)@\($0.rank)" }.joined(separator: " ")
            case .rowWise: "rows " + placement.shards.map { "\($0.rows!.lowerBound)..<\($0.rows!.upperBound)@\($0.rank)" }.joined(separator: " ")
            case .grid: placement.shards.map { shard in
                    let rows = shard.rows ?? 0..<table.rows
                    return "rows \(rows.lowerBound)..<\(rows.upperBound) cols \(shard.columns.lowerBound)..<\(shard.columns.upperBound)@\(shard.rank)"
                }.joined(separator: " ")
            }
            lines.append([table.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0), pad(placement.type.rawValue, 13), pad(ranks, 9), pad(ByteCount(memory).description, 10),
                          pad(fixed(compute), 8)].joined(separator: " ") + "  " + held)
        }
        return lines.joined(separator: "\n")
    }

    /// How `plan` compares, by `predictor`, with round-robin and with the cheapest plan of the
    /// heuristic planners (each planned for the same task; one that cannot place it is skipped).
    static func versusHeuristics(_ plan: ShardingPlan, task: PlanningTask, predictor: any PlanCostModel, source: String,
                                 communication: CommunicationCostModel, seed: UInt64) -> String {
        func cost(_ name: String) -> Double? {
            guard let planner = try? PlannerCatalog.planner(named: name, seed: seed, communication: communication, models: .shipped),
                  let other = try? planner.plan(task) else { return nil }
            return try? predictor.cost(of: other, tables: task.tables).total
        }
        guard let mine = try? predictor.cost(of: plan, tables: task.tables).total else { return "" }
        func versus(_ other: Double) -> String {
            String(format: "%.2f ms, %@ %.1f%% %@", other, plan.algorithm, 100 * abs(1 - mine / other), mine <= other ? "cheaper" : "dearer")
        }
        let heuristics = PlannerCatalog.heuristics.filter { $0 != plan.algorithm }.compactMap { name in cost(name).map { (name, $0) } }
        let best = heuristics.min { $0.1 < $1.1 }
        return String(format: "plan by the %@: %@ %.2f ms per step; ", source, plan.algorithm, mine)
            + "round-robin " + (cost("round-robin").map(versus) ?? "cannot place the tables") + "; "
            + (best.map { "best heuristic \($0.0) " + versus($0.1) } ?? "no heuristic places the tables")
    }

    /// Per planner, the means over the tasks it placed of the oracle's cost, the model's
    /// prediction and the trained step with its parts. The parts are those of the slowest rank
    /// by embedding CPU time, in wall time (embedding, dense layers, communication including
    /// the wait in collectives), and `other` is the rest of the step (packing, scattering,
    /// the loss); the embedding CPU time stands beside them.
    static func trainingComposition(_ results: [PlanEvaluation.Result], algorithms: [String]) -> String {
        var lines = ["", "trained, ms per step (means over the tasks each planner placed): the step is the median window's wall time = "
                     + "embedding + dense + communication + other, the slowest rank's (by embedding CPU time) wall-time phases",
                     [pad("planner", 18), pad("oracle", 7), pad("model", 7), pad("step", 7), pad("emb", 7), pad("emb cpu", 7), pad("dense", 7),
                      pad("comm", 7), pad("other", 7)].joined(separator: " ")]
        for name in algorithms {
            let mine = results.filter { $0.algorithm == name && $0.trained != nil }
            guard !mine.isEmpty else { continue }
            func mean(_ value: (PlanEvaluation.Result) -> Double) -> Double { mine.reduce(0) { $0 + value($1) } / Double(mine.count) }
            func slowest(_ r: PlanEvaluation.Result) -> RankPhases { r.trained!.ranks.max { $0.embeddingCPUMilliseconds < $1.embeddingCPUMilliseconds }! }
            let columns = [mean { $0.measuredMilliseconds ?? 0 }, mean { $0.predicted?.total ?? 0 }, mean { $0.trained!.stepMilliseconds },
                           mean { slowest($0).embeddingMilliseconds }, mean { slowest($0).embeddingCPUMilliseconds }, mean { slowest($0).denseMilliseconds },
                           mean { slowest($0).communicationMilliseconds },
                           mean { r in let p = slowest(r); return r.trained!.stepMilliseconds - p.embeddingMilliseconds - p.denseMilliseconds - p.communicationMilliseconds }]
            lines.append(([pad(name, 18)] + columns.map { pad(fixed($0), 7) }).joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// How training agrees with the oracle (see `TrainingAgreement`): per task and in median,
    /// then the oracle's error per sharding type, in absolute value and signed.
    static func trainingAgreement(_ agreement: TrainingAgreement) -> String {
        var lines = ["", "training against the oracle: Spearman of the plans' orderings by embedding compute (slowest rank, trained CPU time) "
                     + "and, where ranks <= \(ProcessInfo.processInfo.activeProcessorCount) cores, by step (trained wall time)"]
        for task in agreement.tasks {
            lines.append(String(format: "  task %d (%d ranks, %d plans): embedding %.2f", task.index + 1, task.ranks, task.plans, task.byEmbedding)
                         + (task.byStep.map { String(format: ", step %.2f", $0) } ?? ""))
        }
        let stepTasks = agreement.tasks.filter { $0.byStep != nil }.count
        let medians = [agreement.medianByEmbedding.map { String(format: "median Spearman by embedding %.2f over %d tasks", $0, agreement.tasks.count) },
                       agreement.medianByStep.map { String(format: "median Spearman by step %.2f over %d tasks", $0, stepTasks) }].compactMap { $0 }
        lines.append(medians.isEmpty ? "  no task had two trained plans" : "  " + medians.joined(separator: "; "))
        for type in ShardingPlan.ShardingType.allCases {
            guard let errors = agreement.errors[type], !errors.isEmpty else { continue }
            lines.append(String(format: "  %@: oracle embedding time off the trained CPU time by %.1f%% (median over %d ranks; signed median %+.1f%%)",
                                type.rawValue, 100 * median(errors.map(abs)), errors.count, 100 * median(errors)))
        }
        return lines.joined(separator: "\n")
    }

    /// The planners side by side (see `PlannerComparison`).
    static func comparison(_ comparison: PlannerComparison, oracle: String, clock: CostOracle.Clock) -> String {
        func gain(_ value: Double?) -> String { value.map { String(format: "%+.1f%%", 100 * $0) } ?? "-" }
        var lines = ["", "\(comparison.tasks) tasks, \(comparison.placed) placed by some planner, \(comparison.placedByAll) by every one; "
                     + "costs are the oracle's, ms per step; \"mean\" charges an infeasible plan as the task's slowest feasible one; "
                     + "best heuristic: \(comparison.bestCharged ?? "-") by mean, \(comparison.bestCommon ?? "-") where all placed",
                     [pad("planner", 18), pad("mean", 8), pad("vs best", 8), pad("all placed", 10), pad("vs best", 8), pad("feasible", 9),
                      pad("search s", 9)].joined(separator: " ")]
        for planner in comparison.planners {
            lines.append([pad(planner.name, 18), pad(planner.charged.map { fixed($0) } ?? "-", 8), pad(gain(planner.chargedGain), 8),
                          pad(planner.common.map { fixed($0) } ?? "-", 10), pad(gain(planner.commonGain), 8),
                          pad("\(planner.feasible)/\(planner.evaluated)", 9), pad(String(format: "%.3f", planner.meanSearchSeconds), 9)]
                .joined(separator: " "))
        }
        let others = comparison.repeatSpreadByClock.filter { $0.key != clock.rawValue }.sorted { $0.key < $1.key }
        lines.append(repeatSpread(comparison.repeatSpread, relative: comparison.relativeSpread, oracle: oracle)
                     + others.map { String(format: " (on the %@ clock, measured in the same rounds: %.1f%%)", $0.key, 100 * $0.value.median) }.joined())
        return lines.joined(separator: "\n")
    }

    /// The line under a results table that says how far apart the oracle's repeats of one
    /// plan fall, in cost and in cost relative to the task's other plans, so a reader can tell a
    /// gain from noise, and what the oracle measured.
    static func repeatSpread(_ spread: (median: Double, plans: Int)?, relative: (median: Double, plans: Int)?, oracle: String) -> String {
        guard let spread else { return "oracle repeat spread: not measured (each plan measured once; --repeats 2 or more measures it); \(oracle)" }
        return String(format: "oracle repeat spread: two measurements of one plan differ by %.1f%% (median over %d plans)", 100 * spread.median, spread.plans)
            + (relative.map { String(format: ", relative to its task's other plans by %.1f%%", 100 * $0.median) } ?? "") + "; \(oracle)"
    }
}
