import ArgumentParser
import Distributed
import Foundation
import Models
import Sharding

/// `mpitrain bench dlrm`: DLRM training throughput on the fixed configurations, on one rank or
/// scaling over several.
struct BenchDLRMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlrm",
        abstract: "DLRM training samples/s on bench-A and bench-B: one rank with BLAS and embedding time, or scaling over ranks.",
        discussion: "Synthetic batches are generated before timing. Embedding bandwidth counts rows read by the forward "
            + "and rows read and written by the update, set against a STREAM-style copy measured in the same run and against "
            + "random reads of rows of the configuration's width over a table of its tables' bytes (the gather floor). "
            + "With --ranks, run under as many ranks as the largest count: ./launch run -n 4 -- bench dlrm --ranks 1,2,4")

    @Option(help: "Configurations to run.")
    var configs: [String] = ["bench-A", "bench-B"]

    @Option(help: "Rank counts to scale over, e.g. 1,2,4 (strong and weak scaling, round-robin table-wise plans).")
    var ranks: String?

    @Option(help: "Threads for BLAS and the embedding kernels (default: OPENBLAS_NUM_THREADS, else 1).")
    var threads: Int?

    @Option(help: "Timed steps per run (default: 20 for bench-A, 400 for bench-B).")
    var steps: Int?

    @Option(help: "Timed runs; the median is reported. With --ranks, rounds that time every rank count in turn.")
    var runs = 3

    @Option(help: "Also write the rows as JSON to this file.")
    var json: String?

    @Option(help: "With --ranks: write a Chrome/Perfetto trace of every rank's phases in the largest count's strong-scaling runs here.")
    var trace: String?

    func validate() throws {
        guard runs >= 1, (steps ?? 1) >= 1 else { throw ValidationError("--runs and --steps must be at least 1") }
        guard trace == nil || (ranks != nil && configs.count == 1) else {
            throw ValidationError("--trace needs --ranks and one of --configs: it traces one configuration's scaling runs")
        }
        try checkThreads(threads)
    }

    func run() throws {
        if let json { try OutputPaths.checkFile(json, "JSON file") }
        if let trace { try OutputPaths.checkFile(trace, "trace file") }
        let blasThreads = configureThreads(threads)
        let setups = try configs.map { try DLRMBenchmark.Setup.named($0) }
        if let ranks { return try runScaling(setups, rankCounts: try DLRMConfig.parseSizes(ranks, separator: ",", name: "--ranks"),
                                             threads: blasThreads) }
        let stream = MemoryBandwidth.copyBytesPerSecond()
        print("# mpitrain bench dlrm: \(blasThreads) thread(s) (BLAS and embedding kernels); median of \(runs) runs; times per step")
        print(String(format: "# STREAM-style copy: %.1f GB/s", stream / 1e9))
        print([pad("config", 8), pad("samples/s", 10), pad("ms/step", 8), pad("MLP ms", 8), pad("sgemm ms", 9), pad("MLP/sgemm", 10),
               pad("emb ms", 8), pad("emb GB/s", 9), pad("of copy", 8), pad("gather", 8), pad("of gather", 10), pad("inter ms", 9)]
            .joined(separator: " "))
        var rows: [DLRMBenchmark.Row] = []
        for setup in setups {
            var benchmark = DLRMBenchmark(setup: setup, steps: steps ?? defaultSteps(setup))
            benchmark.runs = runs
            let row = try benchmark.run(blasThreads: blasThreads)
            rows.append(row)
            print([pad(row.name, 8), pad(String(Int(row.samplesPerSecond.rounded())), 10), pad(fixed(row.stepMilliseconds), 8),
                   pad(fixed(row.mlpMilliseconds), 8), pad(fixed(row.sgemmMilliseconds), 9),
                   pad(fixed(row.mlpMilliseconds / row.sgemmMilliseconds), 10), pad(fixed(row.embeddingMilliseconds), 8),
                   pad(fixed(row.embeddingBytesPerSecond / 1e9), 9), pad(Self.percent(row.embeddingBytesPerSecond / stream), 8),
                   pad(fixed(row.rowGatherBytesPerSecond / 1e9), 8), pad(Self.percent(row.embeddingBytesPerSecond / row.rowGatherBytesPerSecond), 10),
                   pad(fixed(row.interactionMilliseconds), 9)].joined(separator: " "))
        }
        print("# gather: GB/s of random reads of rows of the config's width over a table of its tables' bytes, measured after its runs"
              + rows.map { String(format: "; %@: 64-byte lines %.1f GB/s", $0.name, $0.lineGatherBytesPerSecond / 1e9) }.joined())
        if let json { try JSONFile.write(rows, to: json) }
    }

    private func defaultSteps(_ setup: DLRMBenchmark.Setup) -> Int { setup.batchSize >= 1024 ? 20 : 400 }

    private static func percent(_ share: Double) -> String { String(Int((100 * share).rounded())) + "%" }

    /// Strong and weak scaling over `rankCounts`, each count on the first ranks of the job
    /// while the others sleep, timed in alternating rounds.
    private func runScaling(_ setups: [DLRMBenchmark.Setup], rankCounts: [Int], threads: Int) throws {
        let world = try MPIRuntime.world()
        guard let largest = rankCounts.max(), rankCounts.allSatisfy({ $0 >= 1 }) else { throw ConfigError("--ranks must list counts of at least 1") }
        guard largest <= world.size else {
            throw ConfigError("--ranks \(ranks!) needs a job of at least \(largest) ranks: ./launch run -n \(largest) -- bench dlrm --ranks \(ranks!)")
        }
        if world.isRoot {
            print("# mpitrain bench dlrm --ranks \(ranks!): \(threads) thread(s) per rank, round-robin table-wise plans, "
                  + "\(runs) rounds, each timing every rank count in turn; medians")
            print("# strong: the benchmark's global batch over the ranks; weak: its batch on every rank; ceiling: one-rank runs on "
                  + "as many ranks at once, no communication, rates summed. Speedup: over one rank timed "
                  + "in the same round, median and range over rounds. Times are ms per step; emb and oracle are the slowest rank's "
                  + "(oracle: its shards alone, caches flushed)")
            print([pad("config", 8), pad("scaling", 7), pad("ranks", 5), pad("batch", 6), pad("samples/s", 10), pad("speedup", 8),
                   pad("range", 11), pad("step ms", 8), pad("emb ms", 7), pad("oracle", 7), pad("comm ms", 8), pad("dense ms", 8),
                   pad("comm %", 7)].joined(separator: " "))
        }
        var rows: [ShardedDLRMBenchmark.ScalingRow] = []
        for setup in setups {
            let benchmark = ShardedDLRMBenchmark(setup: setup, steps: steps ?? defaultSteps(setup))
            try benchmark.scaling(on: world, rankCounts: [1] + Set(rankCounts).subtracting([1]).sorted(), rounds: runs, threads: threads,
                                     tracePath: trace) { row in
                rows.append(row)
                let measured = row.measured
                print([pad(setup.name, 8), pad(measured.scaling.rawValue, 7), pad("\(measured.ranks)", 5), pad("\(measured.globalBatch)", 6),
                       pad(String(Int(measured.samplesPerSecond.rounded())), 10), pad(String(format: "%.2fx", row.speedup), 8),
                       pad(String(format: "%.2f-%.2f", row.roundSpeedups.min()!, row.roundSpeedups.max()!), 11),
                       pad(fixed(measured.stepMilliseconds), 8), pad(fixed(measured.embeddingMilliseconds[measured.slowestEmbeddingRank]), 7),
                       pad(fixed(row.oracleEmbeddingMilliseconds), 7), pad(fixed(measured.communicationMilliseconds.max()!), 8),
                       pad(fixed(measured.denseMilliseconds.max()!), 8),
                       pad(String(format: "%.1f%%", 100 * measured.communicationFraction), 7)].joined(separator: " "))
                fflush(nil)
            }
        }
        if world.isRoot, let json { try JSONFile.write(rows, to: json) }
    }
}
