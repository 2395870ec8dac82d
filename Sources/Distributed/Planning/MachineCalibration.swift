import Foundation
import Models
import Sharding

/// `costs calibrate`: a cost set for the machine it runs on, within a time budget. The
/// all-to-all calibration first, on each rank count asked for (its own MPI jobs, so an
/// unreachable host stops it before the long part); then the speed reference, on a tenth of
/// the budget, which scales every shard set measured after it; then `CostCalibration` on the
/// rest, and DreamShard's cost network fine-tuned on the same sets; and the set written where
/// the previous one stood only once it is complete.
public struct MachineCalibration {
    /// What the calibration reports as it goes.
    public enum Event {
        case communicationMeasured(ranks: Int)
        case speedReference(SpeedReference)
        case measured(sets: Int, secondsLeft: Double)
        case fineTuned(CostCalibration.Outcome)
        case dreamShardFineTuned(DreamShardCalibration.Outcome)
        /// The check against forgetting, or nil when the cost files hold no held-out sets.
        case homeSets(HomeCheck?)
    }

    /// Both models' median per-rank error, before and after, on the shard sets the shipped
    /// NeuroShard model was judged on (tables it never saw), measured on the machine it was
    /// trained on: what tuning to this machine cost them there. The sets' times are brought
    /// from the shipped speed reference to the one re-timed here before the tuned models are
    /// judged, so a machine that is only slower or faster costs nothing; what is left is the
    /// difference in shape between the machines, and anything the models forgot.
    public struct HomeCheck {
        public var sets: Int
        public var hardware: HardwareFingerprint?
        public var before: (neuroShard: Double, dreamShard: Double)
        public var after: (neuroShard: Double, dreamShard: Double)

        static func errors(_ neuroShard: NeuroShardCostModel, _ dreamShard: DreamShardModel, on home: NeuroShardCostModel.Dataset,
                           reference: Double?) -> (neuroShard: Double, dreamShard: Double) {
            let records = home.scaled(toReference: reference)
            return (CostCalibration.errors(of: neuroShard, on: records).all,
                    DreamShardCalibration.errors(of: dreamShard, on: records, batchSize: home.batchSize).all)
        }
    }

    /// The file of the held-out sets, found among the cost files as the models are.
    public static let homeSetsName = "held-out-sets"

    public var budgetSeconds: Double
    /// Rank counts to measure the all-to-all calibration on (none: keep the shipped ones).
    public var ranks: [Int] = []
    public var jobs: JobLauncher
    public var seed: UInt64

    public init(budgetSeconds: Double, jobs: JobLauncher, seed: UInt64) {
        self.budgetSeconds = budgetSeconds
        self.jobs = jobs
        self.seed = seed
    }

    /// Calibrates the NeuroShard model at `modelPath` and the DreamShard model at
    /// `dreamShardPath` on tables of `pool` and writes the set into `directory`; returns the
    /// names of the files copied as shipped.
    public func run(modelAt modelPath: String, dreamShardAt dreamShardPath: String, pool: [TableSpec], into directory: String,
                    report: (Event) -> Void) throws -> [String] {
        try CostSet.checkReplaceable(directory)
        let start = ContinuousClock.now
        let neuroShard = try NeuroShardCostModel.read(modelPath), dreamShard = try DreamShardModel.read(dreamShardPath)
        let batchSize = neuroShard.batchSize
        let home = try (try? ShippedResources.file(Self.homeSetsName, kind: "held-out shard sets")).map { path throws(PlanError) in
            try NeuroShardCostModel.Dataset.read(path)
        }
        let homeBefore = home.map { HomeCheck.errors(neuroShard, dreamShard, on: $0, reference: nil) }
        let communication = FileManager.default.temporaryDirectory.appendingPathComponent("mpitrain-calibrate-\(getpid())").path
        try FileManager.default.createDirectory(atPath: communication, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: communication) }
        for count in ranks {
            try jobs.run(["bench", "comm", "--ops", "alltoall", "--ops", "allreduce", "--max-size", "16777216",
                          "--json", communication + "/comm-\(count).json"], ranks: count, what: "measuring the all-to-all calibration")
            report(.communicationMeasured(ranks: count))
        }
        // The rounds of the speed reference take about 16 ms each.
        var reference = SpeedReference.measure(rounds: max(50, Int(budgetSeconds * 0.1 / 0.016)))
        report(.speedReference(reference))
        let oracle = CostOracle(batchSize: batchSize, communication: CommunicationCostModel(tables: [:]), seed: seed,
                                speedReference: reference, conditions: .isolated, clock: .cpu)
        let remaining = (budgetSeconds - (ContinuousClock.now - start).seconds) * 0.95
        let calibration = CostCalibration(budget: .seconds(max(remaining, 1)), seed: seed)
        let measuring = remaining * calibration.measuringShare
        let outcome = try calibration.run(modelAt: modelPath, pool: pool, oracle: oracle) { sets, spent in
            report(.measured(sets: sets, secondsLeft: max(measuring - spent, 0)))
        }
        report(.fineTuned(outcome))
        let measuredCommunication = ranks.map { communication + "/comm-\($0).json" }
        let dreamShardOutcome = try DreamShardCalibration(seed: seed).run(
            dreamShard, tuning: outcome.tuning.records, heldOut: outcome.heldOut, batchSize: batchSize, hardware: outcome.model.hardware,
            communication: CommunicationCostModel(reports: measuredCommunication + Self.communicationReports(besides: measuredCommunication)))
        report(.dreamShardFineTuned(dreamShardOutcome))
        if let home, let homeBefore {
            report(.homeSets(HomeCheck(sets: home.records.count, hardware: home.hardware, before: homeBefore,
                                       after: HomeCheck.errors(outcome.model, dreamShard, on: home,
                                                                 reference: oracle.referenceMilliseconds))))
        } else {
            report(.homeSets(nil))
        }
        reference.hardware = outcome.model.hardware
        return try CostSet.write(into: directory) { staging in
            try outcome.model.write(to: staging + "/neuroshard-cost-model.json", heldOutMedianError: outcome.after.all, unseenTablesMedianError: nil)
            try dreamShardOutcome.model.write(to: staging + "/dreamshard-model.json")
            try reference.write(to: staging + "/speed-reference.json")
            try JSONFile.write(outcome.tuning, to: staging + "/calibration-records.json")
            for count in ranks {
                try FileManager.default.copyItem(atPath: communication + "/comm-\(count).json", toPath: staging + "/comm-\(count).json")
            }
        }
    }

    /// The all-to-all calibrations in use (shipped, or `MPITRAIN_RESOURCES`) for the rank
    /// counts `measured` does not hold.
    static func communicationReports(besides measured: [String]) throws(PlanError) -> [String] {
        let names = Set(measured.map { URL(fileURLWithPath: $0).lastPathComponent })
        return try CommunicationCostModel.shippedReports().filter { !names.contains(URL(fileURLWithPath: $0).lastPathComponent) }
    }
}
