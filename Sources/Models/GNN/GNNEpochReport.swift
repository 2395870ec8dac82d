/// What one epoch of GNN training measured.
public struct GNNEpochReport: Codable, Sendable {
    public var epoch: Int
    public var loss: Double
    public var trainAccuracy: Double
    public var validationAccuracy: Double
    public var testAccuracy: Double
    /// Wall time of the training step (forward, backward, update), without evaluation.
    public var seconds: Double
    /// Bytes this job's ranks sent during the training step, all ranks together.
    public var bytesSent: UInt64

    public init(epoch: Int, loss: Double, trainAccuracy: Double, validationAccuracy: Double,
                testAccuracy: Double, seconds: Double, bytesSent: UInt64) {
        self.epoch = epoch
        self.loss = loss
        self.trainAccuracy = trainAccuracy
        self.validationAccuracy = validationAccuracy
        self.testAccuracy = testAccuracy
        self.seconds = seconds
        self.bytesSent = bytesSent
    }
}

/// A GNN trainer that runs whole epochs, on one rank or across ranks.
public protocol GNNEpochTraining: AnyObject {
    /// The stage this rank trains.
    var stage: GNNStage { get }

    /// Trains epoch `epoch` (from 0), then evaluates; the report, numbering epochs from 1, is the
    /// same on every rank.
    func runEpoch(_ epoch: Int) throws -> GNNEpochReport
}

/// Full-graph training on one rank: one stage, all layers, nodes in the same
/// locality-preserving order as the distributed layouts use. Training is always exact; with
/// `chunks` above 1 the nodes are ordered as a pipeline over that many chunks would order them,
/// and `gradientCheckEvery` compares a pipelined epoch's gradient with the exact one.
public final class GNNTrainer: GNNEpochTraining {
    public let stage: GNNStage
    public let layout: GNNLayout
    let trainCount: Int
    /// Every this many epochs (0: never), from the second, `trainEpoch` also measures what a
    /// pipelined epoch over the layout's chunks would do to the gradient (`PipelinedGradientCheck`).
    public var gradientCheckEvery = 0 {
        didSet { precondition(gradientCheckEvery == 0 || layout.chunks > 1, "a gradient check needs a layout of at least 2 chunks") }
    }
    /// The check of the last epoch that made one.
    public internal(set) var lastGradientCheck: PipelinedGradientCheck?

    public init(config: GNNConfig, graph: Graph, partitioner: GraphPartitioner = .metis, chunks: Int = 1) throws(ConfigError) {
        try config.validate()
        guard config.inputWidth == graph.featureCount, config.classes == graph.classCount else {
            throw ConfigError("model expects \(config.inputWidth) features and \(config.classes) classes, graph has \(graph.featureCount) and \(graph.classCount)")
        }
        layout = try GNNLayout(config: config, graph: graph, stages: 1, partitions: 1, chunks: chunks, partitioner: partitioner, seed: config.seed)
        stage = GNNStage(config: config, graph: graph.permuted(by: layout.order), layers: 0..<config.layers, originalIDs: layout.order)
        // A pipelined pass of the gradient check leaves nothing behind for the exact epochs.
        stage.staleGradients = .dropped
        trainCount = graph.roles.filter { $0 == .train }.count
    }

    /// Forward, backward and an Adam step over the whole graph; returns loss and training accuracy.
    public func trainEpoch(_ epoch: Int) -> (loss: Double, accuracy: Double) {
        let checks = gradientCheckEvery > 0 && epoch > 0 && (epoch + 1) % gradientCheckEvery == 0
        let pipelined = checks ? pipelinedGradient(epoch) : nil
        let all = 0..<stage.graph.nodeCount
        stage.beginEpoch(epoch, training: true)
        stage.forward(rows: all)
        let result = stage.loss(rows: all, trainCount: trainCount)
        stage.backward(rows: all)
        if let pipelined { checkGradient(epoch, exactLoss: result.loss, pipelined: pipelined) }
        stage.step()
        return (result.loss, Double(result.correct) / Double(max(result.counted, 1)))
    }

    /// A training epoch timed, then an evaluation.
    public func runEpoch(_ epoch: Int) -> GNNEpochReport {
        let start = ContinuousClock.now
        let (loss, trainAccuracy) = trainEpoch(epoch)
        let seconds = (ContinuousClock.now - start).seconds
        let (validation, test) = evaluate(epoch)
        return GNNEpochReport(epoch: epoch + 1, loss: loss, trainAccuracy: trainAccuracy, validationAccuracy: validation,
                              testAccuracy: test, seconds: seconds, bytesSent: 0)
    }

    /// Accuracy on validation and test nodes, without dropout.
    public func evaluate(_ epoch: Int) -> (validation: Double, test: Double) {
        let all = 0..<stage.graph.nodeCount
        stage.beginEpoch(epoch, training: false)
        stage.forward(rows: all)
        let validation = stage.accuracy(rows: all, role: .validation), test = stage.accuracy(rows: all, role: .test)
        return (Double(validation.correct) / Double(max(validation.counted, 1)), Double(test.correct) / Double(max(test.counted, 1)))
    }
}
