import Distributed
import Foundation
import Models
import Sharding
import TestSupport
import Testing

/// `DLRMJob` run in this process on MPI's one-rank world: the library's events and summary
/// checked directly, as `dlrm` receives them before it prints anything.
@Suite(.serialized) struct DLRMJobTests {
    /// A job over the heterogeneous tables of `HeterogeneousTablesTests`, synthetic clicks.
    static func job(steps: Int, checkpoints: String? = nil, every: Int = 0, resume: Bool = false, seed: UInt64 = 5) throws -> DLRMJob {
        let world = try MPIRuntime.world()
        let specs = try HeterogeneousTablesTests.specs()
        let config = try DLRMConfig(bottomMLP: [13, 32, 16], topMLP: [32, 1], tables: specs.map(\.embedding), interaction: .cat)
        let source = ClickSource.synthetic(try SyntheticClicks(config: config, traffic: specs.map(\.traffic), seed: 5), specs: nil)
        let task = PlanningTask(tables: specs, ranks: world.size, memoryPerRank: 1 << 30, batchSize: 128, optimizer: .sgd)
        var settings = DLRMJob.Settings(steps: steps, batchSize: 128, schedule: LearningRateSchedule(base: 0.1), seed: seed)
        settings.reportEvery = 20
        settings.evalEvery = 30
        settings.evalSamples = 2048
        settings.checkpointDirectory = checkpoints
        settings.checkpointEvery = every
        settings.resume = resume ? .always : .never
        return try DLRMJob(world: world, config: config, specs: specs, task: task, plan: .roundRobin(specs, ranks: world.size),
                           source: source, settings: settings)
    }

    @Test func aJobReportsEveryWindowEvaluationAndItsSummary() throws {
        var progress: [DLRMJob.Progress] = [], evaluations: [Int] = []
        let summary = try #require(try Self.job(steps: 70).run { event in
            switch event {
            case .progress(let window): progress.append(window)
            case .evaluation(let step, _): evaluations.append(step)
            default: break
            }
        })
        #expect(progress.map(\.step) == [20, 40, 60, 70])
        #expect(progress.map(\.windowSteps) == [20, 20, 20, 10])
        #expect(progress.allSatisfy { $0.ranks?.count == 1 && $0.ranks![0].embeddingCPUMilliseconds > 0 && $0.samplesPerSecond > 0 })
        #expect(evaluations == [30, 60, 70])
        #expect(summary.stepsTrained == 70 && summary.lastWindowSteps == 10 && summary.bytesSentPerStep == nil)
        #expect(progress.last!.loss < progress.first!.loss, "loss \(progress.map(\.loss))")
        #expect(try #require(summary.heldOut.auc) > 0.6, "held-out AUC \(summary.heldOut.auc ?? 0)")
    }

    /// A job resumed from its step-40 checkpoint ends where the uninterrupted job ends.
    @Test func aResumedJobEndsAsTheUninterruptedOne() throws {
        try withTemporaryDirectory("dlrm-job") { directory in
            let whole = try #require(try Self.job(steps: 60).run { _ in })
            _ = try Self.job(steps: 40, checkpoints: directory.path).run { _ in }
            var resumedAt: Int?
            let resumed = try #require(try Self.job(steps: 60, checkpoints: directory.path, resume: true).run { event in
                if case .resumed(_, let step, _) = event { resumedAt = step }
            })
            #expect(resumedAt == 40 && resumed.stepsTrained == 20)
            #expect(abs(resumed.heldOut.loss - whole.heldOut.loss) <= 1e-4 * whole.heldOut.loss,
                    "held-out loss \(resumed.heldOut.loss) resumed, \(whole.heldOut.loss) uninterrupted")
            #expect(abs(resumed.trainLoss - whole.trainLoss) <= 1e-4 * whole.trainLoss)
        }
    }
}
