import Distributed
import Models
import Testing

/// `GNNTrainingRun` in this process on MPI's one-rank world: the reports and summary `gnn`
/// prints from, checked directly.
@Suite(.serialized) struct GNNTrainingRunTests {
    static let graph: Graph = {
        var generator = ContextualSBM()
        generator.nodeCount = 300
        generator.averageDegree = 6
        generator.classCount = 3
        generator.featureCount = 16
        generator.seed = 2
        return generator.generate()
    }()

    static var config: GNNConfig {
        var c = GNNConfig(inputWidth: graph.featureCount, classes: graph.classCount)
        c.layers = 3
        return c
    }

    @Test func reportsEveryEpochAsTheTrainerComputesIt() throws {
        let world = try MPIRuntime.world()
        var handed: [GNNEpochReport] = []
        let summary = try GNNTrainingRun(epochs: 4).run(try GNNTrainer(config: Self.config, graph: Self.graph), on: world) {
            handed.append($0)
        }
        let twin = try GNNTrainer(config: Self.config, graph: Self.graph)
        for (epoch, report) in summary.reports.enumerated() {
            let (loss, trainAccuracy) = twin.trainEpoch(epoch)
            let (validation, test) = twin.evaluate(epoch)
            #expect(report.epoch == epoch + 1 && report.loss == loss && report.trainAccuracy == trainAccuracy)
            #expect(report.validationAccuracy == validation && report.testAccuracy == test)
        }
        #expect(summary.reports.count == 4 && handed.map(\.epoch) == summary.reports.map(\.epoch))
        let peaks = try #require(summary.peakResidentSetBytes)
        #expect(peaks.count == 1 && peaks[0] >= 1 << 20, "\(peaks)")
    }

    /// A trainer whose loss turns NaN at one epoch.
    final class Diverging: GNNEpochTraining {
        let stage = GNNStage(config: GNNTrainingRunTests.config, graph: GNNTrainingRunTests.graph, layers: 0..<3)
        let nanAt: Int

        init(nanAt: Int) { self.nanAt = nanAt }

        func runEpoch(_ epoch: Int) -> GNNEpochReport {
            GNNEpochReport(epoch: epoch + 1, loss: epoch + 1 == nanAt ? .nan : 1, trainAccuracy: 0, validationAccuracy: 0,
                           testAccuracy: 0, seconds: 0.001, bytesSent: 0)
        }
    }

    @Test func aNonFiniteLossStopsTheRunAtItsEpoch() throws {
        let world = try MPIRuntime.world()
        var handed: [Int] = []
        #expect {
            _ = try GNNTrainingRun(epochs: 10).run(Diverging(nanAt: 3), on: world) { handed.append($0.epoch) }
        } throws: { error in
            "\(error)" == "epoch 3: the training loss is NaN (lr 0.01); stopped (a lower --lr may help)"
        }
        #expect(handed == [1, 2])
    }
}
