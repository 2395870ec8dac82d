import ArgumentParser
import Foundation
import Models
import Sharding

/// `mpitrain dreamshard train`: DreamShard's cost network and policy, trained against the
/// cost oracle on tasks drawn from a pool's training split.
struct DreamShardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dreamshard",
        abstract: "Train DreamShard's cost network and placement policy on this machine's measured costs.",
        subcommands: [Train.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draw training tasks from a pool's training split and run DreamShard's outer loop against the cost oracle.")

        @Option(help: "The pool (from `tables pool`); tasks use its training split only.")
        var pool: String

        @Option(help: "Draw the tasks evenly from these benchmark presets' shapes (tables, ranks, memory), for example shard-small,shard-mid,shard-large to train over 2, 4 and 8 ranks; instead of --ranks, --min-tables, --max-tables and --memory-fraction.")
        var presets: String?

        /// The task shape without `--presets`; each shape option overrides its part.
        static let defaultShape = TaskPreset(name: "dreamshard-train", tables: 30...60, ranks: 4, memoryFraction: 0.35)

        @Option(help: "Ranks of every training task (default \(Train.defaultShape.ranks)).")
        var ranks: Int?

        @Option(help: "Training tasks to draw.")
        var tasks = 100

        @Option(help: "Fewest tables in a task (default \(Train.defaultShape.tables.lowerBound)).")
        var minTables: Int?

        @Option(help: "Most tables in a task (default \(Train.defaultShape.tables.upperBound)).")
        var maxTables: Int?

        @Option(help: "Each rank's memory as a fraction of its task's table bytes (default \(Train.defaultShape.memoryFraction)).")
        var memoryFraction: Double?

        @Option(help: "Global batch size of the measurements.")
        var batchSize = 512

        @Option(help: "Outer iterations.")
        var iterations = 10

        @Option(help: "Plans sampled and measured by the cost oracle per iteration.")
        var measuredPlans = 10

        @Option(help: "Cost-network mini-batches per iteration.")
        var costSteps = 300

        @Option(help: "Policy updates per iteration.")
        var policyBatches = 10

        @Option(help: "Episodes per policy update.")
        var episodes = 10

        @Option(help: "Weight of the entropy bonus.")
        var entropyWeight: Float = 0.001

        @Option(help: "Reward the policy by the cost network's overall head (as the paper) or by its slowest rank: overall-head or slowest-rank.")
        var reward: DreamShardTraining.StepCost = .overallHead

        @Option(help: "Adam's learning rate (decayed linearly over the iterations).")
        var learningRate: Float = 5e-4

        @Option(help: "Seed of the split, the tasks, the weights and every sample.")
        var seed: UInt64 = 0

        @Option(help: "Write the model here.")
        var out: String

        @OptionGroup var oracleOptions: PlanCommand.OracleOptions

        func validate() throws {
            guard presets == nil || [ranks, minTables, maxTables].allSatisfy({ $0 == nil }) && memoryFraction == nil else {
                throw ValidationError("--presets sets the tasks' shapes; leave out --ranks, --min-tables, --max-tables and --memory-fraction")
            }
            let tables = Self.defaultShape.tables
            guard (minTables ?? 1) >= 1, (maxTables ?? tables.upperBound) >= (minTables ?? tables.lowerBound) else {
                throw ValidationError("need 1 <= --min-tables <= --max-tables")
            }
            let shape = customShape
            guard (1...65536).contains(shape.ranks) else { throw ValidationError("--ranks must be in 1...65536, found \(shape.ranks)") }
            guard tasks >= 1, iterations >= 1, measuredPlans >= 1, costSteps >= 1, policyBatches >= 0, episodes >= 2 else {
                throw ValidationError("--tasks, --iterations, --measured-plans and --cost-steps must be at least 1, --episodes at least 2")
            }
            guard shape.memoryFraction > 0, batchSize >= 1 else { throw ValidationError("--memory-fraction and --batch-size must be positive") }
        }

        /// `defaultShape` with the shape options given (checked by `validate`).
        var customShape: TaskPreset {
            var shape = Self.defaultShape
            shape.ranks = ranks ?? shape.ranks
            shape.tables = (minTables ?? shape.tables.lowerBound)...(maxTables ?? shape.tables.upperBound)
            shape.memoryFraction = memoryFraction ?? shape.memoryFraction
            return shape
        }

        /// The shapes to draw tasks from: the named presets, or one of the shape options.
        func shapes() throws -> [TaskPreset] {
            guard let presets else { return [customShape] }
            return try presets.split(separator: ",").map { name in
                let preset = try TaskPreset.named(String(name))
                // An episode places whole tables; a task with a table larger than a rank has no episode.
                guard !preset.cutsRows else {
                    throw PlanError("--presets: \(name) tasks hold tables larger than a rank, which DreamShard's training places whole")
                }
                return preset
            }
        }

        func run() throws {
            try OutputPaths.checkFile(out, "DreamShard model")
            let (train, _) = TablePool.split(try TableSpecFile.read(pool), seed: seed)
            let shapes = try shapes()
            let drawnByShape = try shapes.enumerated().map { i, shape in
                try shape.draw(count: tasks / shapes.count + (i < tasks % shapes.count ? 1 : 0), from: train, batchSize: batchSize, seed: seed)
            }
            let drawn = drawnByShape.flatMap { $0 }
            let oracle = try oracleOptions.oracle(batchSize: batchSize, communication: try CommunicationCostModel.shipped(), seed: seed)
            var training = DreamShardTraining()
            training.iterations = iterations
            training.measuredPlans = measuredPlans
            training.costSteps = costSteps
            training.policyBatches = policyBatches
            training.episodesPerBatch = episodes
            training.entropyWeight = entropyWeight
            training.learningRate = learningRate
            training.reward = reward
            training.seed = seed
            let described = zip(shapes, drawnByShape).map { shape, drawn in
                "\(drawn.count) tasks of \(shape.tables.lowerBound)-\(shape.tables.upperBound) tables on \(shape.ranks) ranks"
            }
            print("\(described.joined(separator: ", ")) from \(train.count) training tables; "
                  + "\(iterations) iterations of \(measuredPlans) measured plans, \(costSteps) cost steps, \(policyBatches)x\(episodes) episodes")
            print([pad("iter", 4), pad("measured ms", 11), pad("cost loss", 9), pad("predicted ms", 12), pad("entropy", 7), pad("dead ends", 9)]
                .joined(separator: " "))
            let eta = ETA(total: iterations)
            let model = try training.train(tasks: drawn, measure: oracle) { p in
                print([pad("\(p.iteration + 1)", 4), pad(fixed(p.meanMeasured), 11), pad(String(format: "%.4f", p.costLoss), 9),
                       pad(fixed(p.meanPredicted), 12), pad(String(format: "%.3f", p.entropy), 7), pad("\(p.deadEnds)", 9), eta.text(done: p.iteration + 1)].joined(separator: " "))
                fflush(nil)
            }
            try model.write(to: out)
            print(String(format: "trained in %.0f s on %d measured plans; wrote %@", model.provenance?.seconds ?? 0,
                         model.provenance?.measuredPlans ?? 0, out))
        }
    }
}

extension DreamShardTraining.StepCost: ExpressibleByArgument {}
