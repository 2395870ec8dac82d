import ArgumentParser
import Foundation
import Models

/// `mpitrain bench dlrm`: single-rank DLRM training throughput on the fixed configurations.
struct BenchDLRMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlrm",
        abstract: "Single-rank DLRM training samples/s on bench-A and bench-B, with BLAS and embedding time.",
        discussion: "Synthetic batches are generated before timing. Embedding bandwidth counts rows read by the forward "
            + "and rows read and written by the update, set against a STREAM-style copy measured in the same run.")

    @Option(help: "Configurations to run.")
    var configs: [String] = ["bench-A", "bench-B"]

    @Option(help: "Threads for BLAS and the embedding kernels (default: OPENBLAS_NUM_THREADS, else 1).")
    var threads: Int?

    @Option(help: "Timed steps per run (default: 20 for bench-A, 400 for bench-B).")
    var steps: Int?

    @Option(help: "Timed runs; the median is reported.")
    var runs = 3

    @Option(help: "Also write the rows as JSON to this file.")
    var json: String?

    func validate() throws {
        guard runs >= 1, (steps ?? 1) >= 1, (threads ?? 1) >= 1 else { throw ValidationError("--runs, --steps and --threads must be at least 1") }
    }

    func run() throws {
        let blasThreads = configureThreads(threads)
        let setups = try configs.map { try DLRMBenchmark.Setup.named($0) }
        let stream = MemoryBandwidth.copyBytesPerSecond()
        print("# mpitrain bench dlrm: \(blasThreads) thread(s) (BLAS and embedding kernels); median of \(runs) runs; times per step")
        print(String(format: "# STREAM-style copy: %.1f GB/s", stream / 1e9))
        print([pad("config", 8), pad("samples/s", 10), pad("ms/step", 8), pad("MLP ms", 8), pad("sgemm ms", 9), pad("MLP/sgemm", 10),
               pad("emb ms", 8), pad("emb GB/s", 9), pad("of copy", 8), pad("inter ms", 9)].joined(separator: " "))
        var rows: [DLRMBenchmark.Row] = []
        for setup in setups {
            var benchmark = DLRMBenchmark(setup: setup, steps: steps ?? (setup.batchSize >= 1024 ? 20 : 400))
            benchmark.runs = runs
            let row = try benchmark.run(blasThreads: blasThreads)
            rows.append(row)
            print([pad(row.name, 8), pad(String(Int(row.samplesPerSecond.rounded())), 10), pad(fixed(row.stepMilliseconds), 8),
                   pad(fixed(row.mlpMilliseconds), 8), pad(fixed(row.sgemmMilliseconds), 9),
                   pad(fixed(row.mlpMilliseconds / row.sgemmMilliseconds), 10), pad(fixed(row.embeddingMilliseconds), 8),
                   pad(fixed(row.embeddingBytesPerSecond / 1e9), 9), pad(String(Int((100 * row.embeddingBytesPerSecond / stream).rounded())) + "%", 8),
                   pad(fixed(row.interactionMilliseconds), 9)].joined(separator: " "))
        }
        if let json { try JSONFile.write(rows, to: json) }
    }
}
