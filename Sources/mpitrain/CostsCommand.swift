import ArgumentParser
import Foundation
import Models
import Sharding

/// `mpitrain costs ...`: NeuroShard's cost data, measured on this machine, and its model.
struct CostsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "costs",
        abstract: "Measure shard costs on this machine and train NeuroShard's cost model on them.",
        subcommands: [Collect.self, Train.self])

    struct Collect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure random shard sets of 1-15 tables from a pool's training split with the cost oracle.")

        @Option(help: "The pool (from `tables pool`); its held-out split is never measured.")
        var pool: String

        @Option(help: "Shard sets to measure.")
        var count = 600

        @Option(help: "Global batch size of the measurements.")
        var batchSize = 512

        @Option(help: "Seed of the split (as `tables tasks`) and of the sets.")
        var seed: UInt64 = 0

        @Option(help: "Write the records here.")
        var out: String

        func run() throws {
            let (train, _) = TablePool.split(try TableSpecFile.read(pool), seed: seed)
            let oracle = CostOracle(batchSize: batchSize, communication: AlltoallCostModel(tables: [:]), seed: seed)
            let start = ContinuousClock.now
            var reported = 0
            let data = NeuroShardCostModel.collect(from: train, count: count, oracle: oracle, seed: seed) { done in
                if done / 100 > reported { reported = done / 100; print("measured \(done)/\(count) sets"); fflush(nil) }
            }
            do { try JSONFile.write(data, to: out) } catch { throw PlanError(error.description) }
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
        var epochs = 300

        @Option(help: "Fraction of the records held out to report the error.")
        var heldOut = 0.2

        @Option(help: "Seed of the weights, the split and the mini-batches.")
        var seed: UInt64 = 0

        @Option(help: "Write the model here.")
        var out: String

        func run() throws {
            let dataset: NeuroShardCostModel.Dataset
            do { dataset = try JSONDecoder().decode(NeuroShardCostModel.Dataset.self, from: Data(contentsOf: URL(fileURLWithPath: data))) }
            catch let error as PlanError { throw PlanError("\(data): \(error)") }
            catch { throw PlanError("\(data): not a cost data set (\(JSONProblem.describe(error)))") }
            guard dataset.records.count >= 10 else { throw PlanError("\(data): \(dataset.records.count) records; at least 10 are needed") }
            var random = SplitMix64(seed: seed, stream: "cost-split")
            let order = dataset.records.indices.shuffled(using: &random)
            let cut = Int(Double(order.count) * heldOut)
            let test = order.prefix(cut).map { dataset.records[$0] }, fit = order.dropFirst(cut).map { dataset.records[$0] }
            let model = NeuroShardCostModel(batchSize: dataset.batchSize, seed: seed)
            let start = ContinuousClock.now
            let losses = model.train(fit, epochs: epochs, seed: seed)
            let trainError = model.medianError(fit), testError = test.isEmpty ? nil : model.medianError(test)
            print(String(format: "trained on %d sets for %d epochs in %.1f s: loss %.4f -> %.4f; median error %.1f%% on them",
                         fit.count, epochs, (ContinuousClock.now - start).seconds, losses.first ?? 0, losses.last ?? 0, 100 * trainError))
            if let testError { print(String(format: "median absolute error on %d held-out sets: %.1f%%", test.count, 100 * testError)) }
            try model.write(to: out, heldOutMedianError: testError)
            print("wrote \(out)")
        }
    }
}
