import Foundation
import Models

/// Moves a NeuroShard cost model to the machine it runs on within a time budget: measures
/// shard sets of training tables (as `costs collect` draws them) until the measuring share of
/// the budget is spent, and a quarter as many of tables held out; fine-tunes the model on the
/// former, starting from its weights at a lower rate (transfer, not training from scratch); and
/// reports the median per-rank error before and after on the held-out sets, which it never
/// trained on.
public struct CostCalibration {
    public struct Outcome {
        public var model: NeuroShardCostModel
        /// Sets the model was tuned on, and the held-out ones it is judged on.
        public var tuning: NeuroShardCostModel.Dataset
        public var heldOut: [NeuroShardCostModel.Record]
        /// Median per-rank error on the held-out sets, over all and over the costliest quarter.
        public var before: (all: Double, costliest: Double)
        public var after: (all: Double, costliest: Double)
    }

    /// Wall time for measuring and tuning together.
    public var budget: Duration
    /// Share of the budget spent measuring; the rest tunes.
    public var measuringShare = 0.9
    /// Sets measured per round of the oracle (every round times a speed reference beside them).
    public var setsPerRound = 16
    public var epochs = 60
    public var learningRate: Float = 1e-3
    public var seed: UInt64

    public init(budget: Duration, seed: UInt64) {
        self.budget = budget
        self.seed = seed
    }

    /// Calibrates `model` (read from `path`, which stays as it is) on tables drawn from `pool`,
    /// measured by `oracle`; `progress` sees the sets measured and the seconds spent.
    public func run(modelAt path: String, pool: [TableSpec], oracle: CostOracle,
                    progress: (_ sets: Int, _ seconds: Double) -> Void = { _, _ in }) throws(PlanError) -> Outcome {
        let (train, unseen) = TablePool.split(pool, seed: seed)
        guard train.count >= 2, !unseen.isEmpty else { throw PlanError("the table pool has \(pool.count) tables; calibration needs at least 8") }
        let start = ContinuousClock.now
        let measuring = budget * measuringShare
        var tuning: [NeuroShardCostModel.Record] = [], heldOut: [NeuroShardCostModel.Record] = []
        var round: UInt64 = 0
        // A round of held-out tables, then four of training ones, and so on until the measuring
        // time is spent (two rounds at least: one of each).
        while round < 2 || ContinuousClock.now - start < measuring {
            let held = round % 5 == 0
            let measured = NeuroShardCostModel.collect(from: held ? unseen : train, count: setsPerRound, oracle: oracle, seed: seed &+ round).records
            if held { heldOut += measured } else { tuning += measured }
            round += 1
            progress(tuning.count + heldOut.count, (ContinuousClock.now - start).seconds)
        }
        let model = try NeuroShardCostModel.read(path)
        let before = Self.errors(of: model, on: heldOut)
        model.train(tuning, epochs: epochs, learningRate: learningRate, seed: seed)
        let dataset = NeuroShardCostModel.Dataset(batchSize: oracle.batchSize, hardware: .measured(),
                                                  referenceMilliseconds: oracle.referenceMilliseconds, records: tuning)
        model.hardware = dataset.hardware
        return Outcome(model: model, tuning: dataset, heldOut: heldOut, before: before, after: Self.errors(of: model, on: heldOut))
    }

    /// Median per-rank error on `records`, and on the costliest quarter of them.
    public static func errors(of model: NeuroShardCostModel, on records: [NeuroShardCostModel.Record]) -> (all: Double, costliest: Double) {
        medianErrors(records.map { record in
            let predicted = model.predict(record.pieces, batch: model.batchSize)
            return (record.forward + record.backward, predicted.forward + predicted.backward)
        })
    }

    /// Median relative error of predicted against measured milliseconds, over all sets and over
    /// the costliest quarter of them (the ranks a plan's step waits for).
    public static func medianErrors(_ sets: [(measured: Double, predicted: Double)]) -> (all: Double, costliest: Double) {
        let errors = sets.map { abs($0.predicted - $0.measured) / $0.measured }
        let costliest = sets.indices.sorted { sets[$0].measured > sets[$1].measured }.prefix(max(sets.count / 4, 1)).map { errors[$0] }
        return (median(errors), median(costliest))
    }
}
