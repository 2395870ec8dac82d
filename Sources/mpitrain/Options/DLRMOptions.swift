import ArgumentParser
import BLASShim
import Distributed
import Foundation
import Models

/// The model flags of `mpitrain dlrm` and `bench dlrm`, named as in the reference DLRM.
struct DLRMModelOptions: ParsableArguments {
    @Option(help: "Bottom MLP sizes, dense features first.")
    var archMlpBot = "13-64-16"

    @Option(help: "Top MLP sizes after its input, ending in 1.")
    var archMlpTop = "64-32-1"

    @Option(help: "Embedding dim of every table (dot interaction: the bottom MLP's output).")
    var archSparseFeatureSize = 16

    @Option(help: "Rows per table, dash-separated (default: 8 tables of 10,000 rows; criteo: 26 of 100,000, or one size for all 26; criteo-bin: the dataset's).")
    var archEmbeddingSize: String?

    @Option(help: "dot or cat.")
    var archInteractionOp: Interaction = .dot

    @Option(help: "sgd, or adagrad (row-wise on embeddings, element-wise on the MLPs).")
    var optimizer: DenseOptimizer.Kind = .sgd

    @Option(help: "Learning rate.")
    var lr: Float = 0.2

    @Option(help: "Learning-rate warm-up steps (linear from 0).")
    var lrNumWarmupSteps = 0

    @Option(help: "Step at which polynomial decay (power 2) starts.")
    var lrDecayStartStep = 0

    @Option(help: "Steps over which the rate decays to 0 (0: no decay).")
    var lrNumDecaySteps = 0

    func validate() throws {
        guard lr.isFinite, lr > 0 else { throw ValidationError("--lr must be a positive number, not \(lr)") }
        guard lrNumWarmupSteps >= 0, lrDecayStartStep >= 0, lrNumDecaySteps >= 0 else {
            throw ValidationError("--lr-num-warmup-steps, --lr-decay-start-step and --lr-num-decay-steps must be at least 0")
        }
    }

    /// The model over `tables`.
    func config(tables: [EmbeddingTableSpec]) throws -> DLRMConfig {
        try DLRMConfig(bottomMLP: DLRMConfig.parseSizes(archMlpBot, name: "--arch-mlp-bot"),
                       topMLP: DLRMConfig.parseSizes(archMlpTop, name: "--arch-mlp-top"),
                       tables: tables, interaction: archInteractionOp)
    }

    var schedule: LearningRateSchedule {
        LearningRateSchedule(base: lr, warmupSteps: lrNumWarmupSteps, decayStart: lrDecayStartStep, decaySteps: lrNumDecaySteps)
    }

    var embeddingOptimizer: EmbeddingOptimizer { optimizer == .sgd ? .sgd : .adagrad }
}

extension Interaction: ExpressibleByArgument {}
extension DenseOptimizer.Kind: ExpressibleByArgument {}
extension BadRowPolicy: ExpressibleByArgument {}
extension DLRMJob.NonFiniteLossPolicy: ExpressibleByArgument {}
extension DLRMJob.ResumePolicy: ExpressibleByArgument {}
extension IndexDistribution: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}

/// Sets the threads of OpenBLAS and returns them: `requested`, else OPENBLAS_NUM_THREADS, else 1.
func configureThreads(_ requested: Int?) -> Int {
    let threads = requested ?? ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"].flatMap(Int.init) ?? 1
    // A value past what any machine has (from the environment: flags are checked) is clamped.
    let bounded = min(max(threads, 1), maxThreads)
    openblas_set_num_threads(Int32(bounded))
    return bounded
}

/// The most threads `--threads` takes.
let maxThreads = 1024

/// Refuses `--threads` outside 1...`maxThreads`.
func checkThreads(_ threads: Int?) throws {
    if let threads, !(1...maxThreads).contains(threads) {
        throw ValidationError("--threads must be in 1...\(maxThreads), found \(threads)")
    }
}
