import Distributed
import Foundation
import Models
import Sharding

extension DLRMCommand {
    /// The coordinator's re-planning step: it searches a plan for the tables as measured in the
    /// last sketch window (their reuse bins in place of the flags' distribution), predicts the
    /// current and the new plan's cost, and keeps the current plan unless the new one is
    /// predicted faster by more than `gain`. Every rank gets the decision with the plan.
    func replan(world: Communicator, current: ShardingPlan, specs: [TableSpec], measured report: LookupReport?, task: PlanningTask,
                memoryPerRank: Int?, step: Int) throws -> ShardingPlan {
        try world.coordinatePlan(tables: specs, memoryPerRank: memoryPerRank, optimizer: model.embeddingOptimizer) {
            guard let report else { return current }
            let measured = try zip(specs, report.reuse).map { spec, bins in
                guard let bins else { return spec }
                return try TableSpec(name: spec.name, rows: spec.rows, dim: spec.dim, poolingFactor: spec.poolingFactor, bins: bins)
            }
            let communication = try planModels.communication()
            let algorithm = planAlgo ?? "neuroshard"
            let planner = try PlannerCatalog.planner(named: algorithm, seed: seed, communication: communication,
                                                     models: planModels.learned)
            var measuredTask = task
            measuredTask.tables = measured
            let candidate = try planner.plan(measuredTask)
            let predictor = try PlanReport.predictor(planModels, batch: batchSize, communication: communication, planner: algorithm,
                                                     optimizer: model.embeddingOptimizer)
            let now = try predictor.model.cost(of: current, tables: measured).total
            let next = try predictor.model.cost(of: candidate, tables: measured).total
            let predictedGain = 1 - next / max(now, 1e-12)
            let reshard = candidate != current && predictedGain > replanGain
            print(String(format: "replan at step %d from measured reuse: current plan %.2f ms, %@ plan %.2f ms predicted (%+.1f%%): %@",
                         step, now, algorithm, next, -predictedGain * 100,
                         reshard ? "resharding through a checkpoint" : "keeping the current plan"))
            if reshard { print("plan: \(algorithm), " + candidate.summary(tables: specs)) }
            return reshard ? candidate : current
        }
    }

    /// A trainer for `plan` holding `trainer`'s model: `trainer` is saved as the checkpoint of
    /// `step` (unless that checkpoint exists) and loaded back resharded.
    func reshard(_ trainer: ShardedDLRM, to plan: ShardingPlan, specs: [TableSpec], config: DLRMConfig, step: Int,
                 directory: String) throws -> ShardedDLRM {
        if DLRMCheckpoint.newest(in: directory)?.step != step { try DLRMCheckpoint.save(trainer, step: step, directory: directory) }
        guard let saved = DLRMCheckpoint.newest(in: directory), saved.step == step else {
            throw ConfigError("\(directory): the checkpoint of step \(step) is missing after saving it")
        }
        let resharded = try ShardedDLRM(world: trainer.world, config: config, shardsByRank: plan.shardsByRank(tables: specs),
                                        replicatedTables: plan.replicatedTables(tables: specs), embeddingOptimizer: model.embeddingOptimizer,
                                        denseOptimizer: model.optimizer, seed: seed, trace: trace != nil)
        resharded.embeddingThreads = trainer.embeddingThreads
        _ = try DLRMCheckpoint.load(into: resharded, from: saved.path)
        resharded.monitor = trainer.monitor == nil ? nil : try makeMonitor(for: resharded, config: config)
        return resharded
    }

    /// The lookup monitor of `trainer` from the sketch flags.
    func makeMonitor(for trainer: ShardedDLRM, config: DLRMConfig) throws -> LookupMonitor {
        try LookupMonitor(every: sketchEvery, tableRows: config.tables.map(\.rows), countedTables: trainer.countedTables,
                          rank: trainer.world.rank, ranks: trainer.world.size, hotThreshold: hotThreshold, auditWidth: auditWidth,
                          hotWidth: hotWidth, auditedFraction: sketchSample,
                          faults: try injectFaults.map { try LookupFaults(parsing: $0) }, seed: seed)
    }
}
