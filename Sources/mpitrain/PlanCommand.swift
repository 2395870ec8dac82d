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
        subcommands: [DryRun.self, Eval.self],
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

        @Option(help: "DreamShard model (default: the one trained on this machine that ships with MPITrain).")
        var dreamshardModel: String?

        func neuroShard() throws(PlanError) -> NeuroShardCostModel {
            if let costModel { return try NeuroShardCostModel.read(costModel) }
            return try NeuroShardCostModel.shipped()
        }

        func dreamShard() throws(PlanError) -> DreamShardModel {
            if let dreamshardModel { return try DreamShardModel.read(dreamshardModel) }
            return try DreamShardModel.shipped()
        }

        var learned: LearnedModels { LearnedModels(neuroShard: neuroShard, dreamShard: dreamShard) }
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

        @Option(help: "How the oracle runs the ranks: isolated (one at a time, cold caches, wall time scaled by the speed reference; comparable across sessions) or concurrent (side by side on threads, warm caches, per-thread CPU time, this machine's milliseconds; what training measures).")
        var oracleConditions: CostOracle.Conditions = .isolated

        func oracle(batchSize: Int, communication: CommunicationCostModel, seed: UInt64) throws(PlanError) -> CostOracle {
            let reference = if oracleConditions == .concurrent { nil as SpeedReference? }
                else if let speedReference { try SpeedReference.read(speedReference) } else { try SpeedReference.shipped() }
            return CostOracle(batchSize: batchSize, communication: communication, seed: seed, speedReference: reference,
                              conditions: oracleConditions)
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
        var batch = 512

        @Option(help: "Planner: \(PlannerCatalog.names.joined(separator: ", ")).")
        var algo = "neuroshard"

        @Option(help: "Embedding optimizer whose state counts toward memory: sgd or adagrad.")
        var optimizer: EmbeddingOptimizer = .sgd

        @Option(help: "Seed of random choices.")
        var seed: UInt64 = 0

        @Flag(help: "Also measure the plan with the cost oracle and show it beside the prediction.")
        var measure = false

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
            guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            if export != .native && out == nil { throw ValidationError("--export \(export.rawValue) needs --out") }
        }

        func run() throws {
            let task = PlanningTask(tables: try TableSpecFile.read(tables), ranks: ranks, memoryPerRank: try ByteCount(parsing: memory).bytes,
                                    batchSize: batch, optimizer: optimizer, dataParallelBytes: try types.dataParallelBytes())
            let communication = try models.communication()
            let planner = try PlannerCatalog.planner(named: algo, seed: seed, communication: communication, models: models.learned)
            let start = ContinuousClock.now
            let plan = try planner.plan(task)
            let searchSeconds = (ContinuousClock.now - start).seconds
            try plan.validate(tables: task.tables, memoryPerRank: task.memoryPerRank, optimizer: optimizer)
            let (predictor, source) = try PlanReport.predictor(models, batch: batch, communication: communication, planner: algo,
                                                               optimizer: optimizer)
            let measured = measure ? try oracle.oracle(batchSize: batch, communication: communication, seed: seed).cost(of: plan, tables: task.tables) : nil
            print("plan: \(algo), \(task.tables.count) tables on \(ranks) ranks, \(ByteCount(task.memoryPerRank)) per rank, batch \(batch); "
                  + String(format: "searched in %.3f s", searchSeconds))
            print(PlanReport.table(plan, task: task, predicted: try predictor.cost(of: plan, tables: task.tables), predictedBy: source,
                                   measured: measured))
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

        @Option(help: "Tasks (from `tables tasks`).")
        var tasks: String

        @Option(help: "Planners, comma-separated (default: all).")
        var algos: String = PlannerCatalog.names.joined(separator: ",")

        @Option(help: "Seed of random choices and of the oracle's batches.")
        var seed: UInt64 = 0

        @Option(help: "Also write every task's results as JSON here (rewritten after each task).")
        var json: String?

        @Option(help: "Times each plan is measured (and trained, with --train): the task's plans are measured in turn, pass after pass, and each plan's cost is its median.")
        var repeats = 1

        @Option(help: "Also train every plan: STEPS warm-up and STEPS measured steps (in windows of 10; figures are medians over windows) of `dlrm --tables` on the task's ranks, each its own MPI job (0: off).")
        var train = 0

        @Option(help: "With --train: the launcher's words before the mpitrain executable, {ranks} for the rank count (default: `launch run -n {ranks} --` of the clone this mpitrain was built in, else `mpirun -n {ranks}`).")
        var launcher: String?

        @OptionGroup var models: ModelOptions
        @OptionGroup var oracle: OracleOptions
        @OptionGroup var types: ShardingTypeOptions

        struct Result: Codable {
            let task: Int
            let algorithm: String
            let feasible: Bool
            let failure: String?
            let searchSeconds: Double
            /// The median of `measurements`.
            let measuredMilliseconds: Double?
            let measurements: [Double]?
            /// Each rank's median part by part over the oracle's measurements.
            let oracleRanks: [RankCost]?
            /// The NeuroShard cost model's prediction (the analytic estimate without one).
            let predicted: PlanCost?
            /// With --train: what training the plan measured (the median of `trainings`), and each training.
            let trained: PlanTrainer.Measurement?
            let trainings: [PlanTrainer.Measurement]?
            let plan: ShardingPlan?
        }

        func validate() throws {
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
            guard train >= 0 else { throw ValidationError("--train must be at least 0") }
        }

        func run() throws {
            let dataParallelBytes = try types.dataParallelBytes()
            let tasks = try TaskFile.read(self.tasks).map { task in
                var task = task
                if let dataParallelBytes { task.dataParallelBytes = dataParallelBytes }
                return task
            }
            let names = algos.split(separator: ",").map(String.init)
            let communication = try models.communication()
            let planners = try names.map { name throws(PlanError) in
                try PlannerCatalog.planner(named: name, seed: seed, communication: communication, models: models.learned)
            }
            var results: [Result] = []
            for (t, task) in tasks.enumerated() {
                let predictor = try PlanReport.predictor(models, batch: task.batchSize, communication: communication, optimizer: task.optimizer).model
                let oracle = try self.oracle.oracle(batchSize: task.batchSize, communication: communication, seed: seed)
                var plans: [(plan: ShardingPlan?, seconds: Double, failure: String?)] = []
                for planner in planners {
                    let start = ContinuousClock.now
                    do {
                        let plan = try planner.plan(task)
                        let seconds = (ContinuousClock.now - start).seconds
                        try plan.validate(tables: task.tables, memoryPerRank: task.memoryPerRank, optimizer: task.optimizer)
                        plans.append((plan, seconds, nil))
                    } catch {
                        plans.append((nil, (ContinuousClock.now - start).seconds, error.description))
                    }
                }
                // Each pass starts one planner later, so no planner is always measured first.
                var measurements = [[Double]](repeating: [], count: plans.count)
                var oracleRanks = [[[RankCost]]](repeating: [], count: plans.count)
                var trainings = [[PlanTrainer.Measurement]](repeating: [], count: plans.count)
                for pass in 0..<repeats {
                    for k in plans.indices {
                        let i = (k + pass) % plans.count
                        guard let plan = plans[i].plan else { continue }
                        let cost = try oracle.cost(of: plan, tables: task.tables)
                        measurements[i].append(cost.total)
                        oracleRanks[i].append(cost.ranks)
                        if let trainer { trainings[i].append(try trainer.train(plan, task: task)) }
                    }
                }
                let trained = trainings.map { $0.isEmpty ? nil : PlanTrainer.Measurement.median($0) }
                let rankMedians = oracleRanks.map { all in all.isEmpty ? nil : all[0].indices.map { r in RankCost.median(all.map { $0[r] }) } }
                for (i, name) in names.enumerated() {
                    let measured = plans[i].plan == nil ? nil : measurements[i]
                    results.append(Result(task: t, algorithm: name, feasible: measured != nil, failure: plans[i].failure,
                                          searchSeconds: plans[i].seconds, measuredMilliseconds: measured.map(median), measurements: measured,
                                          oracleRanks: rankMedians[i],
                                          predicted: try plans[i].plan.map { try predictor.cost(of: $0, tables: task.tables) }, trained: trained[i],
                                          trainings: trainings[i].isEmpty ? nil : trainings[i], plan: plans[i].plan))
                }
                print("task \(t + 1)/\(tasks.count): " + names.map { name in
                    guard let result = results.last(where: { $0.task == t && $0.algorithm == name }), let cost = result.measuredMilliseconds else {
                        return "\(name) infeasible"
                    }
                    return String(format: "%@ %.2f", name, cost) + (result.trained.map { String(format: " (trained %.2f)", $0.stepMilliseconds) } ?? "")
                }.joined(separator: ", "))
                fflush(nil)
                // Written after every task, so a long evaluation stopped early keeps what it measured.
                if let json { try JSONFile.write(results, to: json) }
            }
            print(PlanReport.comparison(results.map { ($0.task, $0.algorithm, $0.measuredMilliseconds, $0.searchSeconds) },
                                        algorithms: names, tasks: tasks.count))
            if trainer != nil {
                print(PlanReport.trainingComposition(results, algorithms: names))
                print(PlanReport.trainingAgreement(results, tasks: tasks))
            }
        }

        /// The plan trainer of `--train`, launching this executable.
        var trainer: PlanTrainer? {
            guard train > 0 else { return nil }
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
            return PlanTrainer(steps: train, executable: executable, launcher: launcher.map { .words($0.split(separator: " ").map(String.init)) },
                               seed: seed)
        }
    }
}

extension EmbeddingOptimizer: ExpressibleByArgument {}
extension CostOracle.Conditions: ExpressibleByArgument {}

/// The text of plan reports.
enum PlanReport {
    /// The model that predicts costs in reports (see `LearnedModels.predictor`); the analytic
    /// estimate stands in only when the shipped NeuroShard model is missing.
    static func predictor(_ models: PlanCommand.ModelOptions, batch: Int, communication: CommunicationCostModel,
                          planner: String? = nil, optimizer: EmbeddingOptimizer = .sgd) throws -> (model: any PlanCostModel, source: String) {
        try models.learned.predictor(batch: batch, communication: communication, planner: planner, optimizer: optimizer,
                                     fallBack: models.costModel == nil)
    }

    /// Per rank: memory, shards, predicted (and measured) milliseconds; then the imbalance.
    static func table(_ plan: ShardingPlan, task: PlanningTask, predicted: PlanCost, predictedBy source: String,
                      measured: PlanCost?) -> String {
        let memory = plan.memoryByRank(tables: task.tables, optimizer: task.optimizer)
        let shards = plan.shardsByRank(tables: task.tables)
        var lines = ["predicted by the \(source)" + (measured == nil ? "" : "; measured by the cost oracle on this machine") + ", ms per step",
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
    static func trainingComposition(_ results: [PlanCommand.Eval.Result], algorithms: [String]) -> String {
        var lines = ["", "trained, ms per step (means over the tasks each planner placed): the step is the median window's wall time = "
                     + "embedding + dense + communication + other, the slowest rank's (by embedding CPU time) wall-time phases",
                     [pad("planner", 18), pad("oracle", 7), pad("model", 7), pad("step", 7), pad("emb", 7), pad("emb cpu", 7), pad("dense", 7),
                      pad("comm", 7), pad("other", 7)].joined(separator: " ")]
        for name in algorithms {
            let mine = results.filter { $0.algorithm == name && $0.trained != nil }
            guard !mine.isEmpty else { continue }
            func mean(_ value: (PlanCommand.Eval.Result) -> Double) -> Double { mine.reduce(0) { $0 + value($1) } / Double(mine.count) }
            func slowest(_ r: PlanCommand.Eval.Result) -> RankPhases { r.trained!.ranks.max { $0.embeddingCPUMilliseconds < $1.embeddingCPUMilliseconds }! }
            let columns = [mean { $0.measuredMilliseconds ?? 0 }, mean { $0.predicted?.total ?? 0 }, mean { $0.trained!.stepMilliseconds },
                           mean { slowest($0).embeddingMilliseconds }, mean { slowest($0).embeddingCPUMilliseconds }, mean { slowest($0).denseMilliseconds },
                           mean { slowest($0).communicationMilliseconds },
                           mean { r in let p = slowest(r); return r.trained!.stepMilliseconds - p.embeddingMilliseconds - p.denseMilliseconds - p.communicationMilliseconds }]
            lines.append(([pad(name, 18)] + columns.map { pad(fixed($0), 7) }).joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// How training agrees with the oracle, per task and in median: the Spearman correlation
    /// of the two orderings of the task's plans by embedding compute (the slowest rank's
    /// trained CPU time against the oracle's slowest compute) and, where the ranks fit the
    /// cores, by step (trained wall step time against the oracle's total); and per sharding
    /// type the median error of the oracle's per-rank embedding time against the trained CPU
    /// time of the ranks holding a shard of that type.
    static func trainingAgreement(_ results: [PlanCommand.Eval.Result], tasks: [PlanningTask]) -> String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var lines = ["", "training against the oracle: Spearman of the plans' orderings by embedding compute (slowest rank, trained CPU time) "
                     + "and, where ranks <= \(cores) cores, by step (trained wall time)"]
        var byEmbedding: [Double] = [], byStep: [Double] = []
        for (t, task) in tasks.enumerated() {
            let mine = results.filter { $0.task == t && $0.trained != nil && $0.oracleRanks != nil }
            guard mine.count >= 2 else { continue }
            let embedding = spearman(mine.map { $0.oracleRanks!.map { $0.forward + $0.backward }.max()! }, mine.map { $0.trained!.embeddingMilliseconds })
            byEmbedding.append(embedding)
            var line = String(format: "  task %d (%d ranks, %d plans): embedding %.2f", t + 1, task.ranks, mine.count, embedding)
            if task.ranks <= cores {
                let step = spearman(mine.map { $0.measuredMilliseconds! }, mine.map { $0.trained!.stepMilliseconds })
                byStep.append(step)
                line += String(format: ", step %.2f", step)
            }
            lines.append(line)
        }
        func summary(_ values: [Double], _ name: String) -> String? {
            values.isEmpty ? nil : String(format: "median Spearman by %@ %.2f over %d tasks", name, median(values), values.count)
        }
        let medians = [summary(byEmbedding, "embedding"), summary(byStep, "step")].compactMap { $0 }
        lines.append(medians.isEmpty ? "  no task had two trained plans" : "  " + medians.joined(separator: "; "))
        var errors: [ShardingPlan.ShardingType: [Double]] = [:]
        for r in results {
            guard let trained = r.trained, let oracleRanks = r.oracleRanks, let plan = r.plan else { continue }
            for rank in 0..<min(trained.ranks.count, oracleRanks.count) {
                let measured = trained.ranks[rank].embeddingCPUMilliseconds, predicted = oracleRanks[rank].forward + oracleRanks[rank].backward
                guard measured > 0 else { continue }
                for type in Set(plan.placements.filter { $0.dataParallel || $0.shards.contains { $0.rank == rank } }.map(\.type)) {
                    errors[type, default: []].append((predicted - measured) / measured)
                }
            }
        }
        for type in ShardingPlan.ShardingType.allCases {
            guard let values = errors[type]?.map(abs).sorted(), !values.isEmpty else { continue }
            lines.append(String(format: "  %@: oracle embedding time off the trained CPU time by %.1f%% (median over %d ranks)",
                                type.rawValue, 100 * values[values.count / 2], values.count))
        }
        return lines.joined(separator: "\n")
    }

    /// Spearman's rank correlation of two equally long lists (average ranks for ties).
    static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        func ranks(_ values: [Double]) -> [Double] {
            let order = values.indices.sorted { values[$0] < values[$1] }
            var result = [Double](repeating: 0, count: values.count), i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
                for k in i...j { result[order[k]] = Double(i + j) / 2 }
                i = j + 1
            }
            return result
        }
        let (x, y) = (ranks(a), ranks(b))
        let n = Double(x.count), mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        let cov = zip(x, y).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let vx = x.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }, vy = y.reduce(0) { $0 + ($1 - my) * ($1 - my) }
        return vx > 0 && vy > 0 ? cov / (vx * vy).squareRoot() : 0
    }

    /// Per planner: mean measured cost over every task some planner placed, an infeasible plan
    /// charged as the task's slowest feasible one (failing is never cheaper than the worst plan
    /// found, and no task drops out of one planner's mean), and the mean over the tasks every
    /// planner placed; each with its gain over the best heuristic by the same mean;
    /// feasibility and mean search time.
    static func comparison(_ results: [(task: Int, algorithm: String, cost: Double?, seconds: Double)], algorithms: [String], tasks: Int) -> String {
        let worst = (0..<tasks).map { t in results.filter { $0.task == t }.compactMap(\.cost).max() }
        let placed = (0..<tasks).filter { worst[$0] != nil }
        let placedByAll = placed.filter { t in algorithms.allSatisfy { a in results.contains { $0.task == t && $0.algorithm == a && $0.cost != nil } } }
        func cost(_ a: String, _ t: Int) -> Double? { results.first { $0.task == t && $0.algorithm == a }?.cost }
        func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        let charged = Dictionary(uniqueKeysWithValues: algorithms.map { a in (a, mean(placed.map { cost(a, $0) ?? worst[$0]! })) })
        let common = Dictionary(uniqueKeysWithValues: algorithms.map { a in (a, mean(placedByAll.compactMap { cost(a, $0) })) })
        /// The best heuristic by `means`, and each planner's gain over it.
        func versus(_ means: [String: Double?]) -> (best: String?, gain: (String) -> String) {
            let best = algorithms.filter { PlannerCatalog.heuristics.contains($0) }.compactMap { a in means[a]!.map { (a, $0) } }.min { $0.1 < $1.1 }
            return (best?.0, { a in means[a]!.flatMap { c in best.map { String(format: "%+.1f%%", 100 * (1 - c / $0.1)) } } ?? "-" })
        }
        let (bestCharged, gainCharged) = versus(charged), (bestCommon, gainCommon) = versus(common)
        var lines = ["", "\(tasks) tasks, \(placed.count) placed by some planner, \(placedByAll.count) by every one; costs are the oracle's, "
                     + "ms per step; \"mean\" charges an infeasible plan as the task's slowest feasible one; "
                     + "best heuristic: \(bestCharged ?? "-") by mean, \(bestCommon ?? "-") where all placed",
                     [pad("planner", 18), pad("mean", 8), pad("vs best", 8), pad("all placed", 10), pad("vs best", 8), pad("feasible", 9),
                      pad("search s", 9)].joined(separator: " ")]
        for a in algorithms {
            let mine = results.filter { $0.algorithm == a }
            let feasible = mine.filter { $0.cost != nil }.count
            lines.append([pad(a, 18), pad(charged[a]!.map { fixed($0) } ?? "-", 8), pad(gainCharged(a), 8),
                          pad(common[a]!.map { fixed($0) } ?? "-", 10), pad(gainCommon(a), 8), pad("\(feasible)/\(mine.count)", 9),
                          pad(String(format: "%.3f", mine.map(\.seconds).reduce(0, +) / Double(max(mine.count, 1))), 9)].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
