import ArgumentParser
import Distributed
import Foundation

/// `mpitrain sketch ...`: the FermatSketch the trainer measures itself with.
struct SketchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sketch",
        abstract: "FermatSketch measurements: benchmark decode thresholds, throughput and exchange cost.",
        subcommands: [SketchBenchCommand.self])
}

/// `mpitrain sketch bench`: decode success against buckets per key for d = 3 and 4, insert and
/// decode throughput on one core, and the bytes an exchange costs per step against raw keys.
struct SketchBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Decode success vs buckets per key, insert/decode throughput, exchange bytes per step.")

    @Option(help: "Keys per decode trial.")
    var keys = 10_000

    @Option(help: "Trials per point.")
    var trials = 20

    @Option(help: "Lookups per training step the exchange figure is for (bench-A: 2048 x 8 tables x 20).")
    var lookupsPerStep = 2048 * 8 * 20

    @Option(help: "Steps between exchanges.")
    var sketchEvery = 10

    @Option(help: "Buckets per array of the exchanged sketch.")
    var width = 4096

    @Option(help: "Seed of the keys and sketches.")
    var seed: UInt64 = 1

    func validate() throws {
        guard keys >= 100, trials >= 1, lookupsPerStep >= 1, sketchEvery >= 1, width >= 1 else {
            throw ValidationError("--keys >= 100 and --trials, --lookups-per-step, --sketch-every, --width >= 1")
        }
    }

    func run() throws {
        var benchmark = SketchBenchmark()
        benchmark.keys = keys
        benchmark.trials = trials
        benchmark.seed = seed
        print("# mpitrain sketch bench: FermatSketch, \(keys) keys with counts 1-5 per trial, \(trials) trials per point")
        print(pad("buckets/key", 13) + pad("d=3 decoded", 13) + pad("d=4 decoded", 13))
        let loads = stride(from: 1.10, through: 1.50001, by: 0.02).map { $0 }
        var thresholds: [Int: Double] = [:]
        for load in loads {
            var line = pad(String(format: "%.2f", load), 13)
            for depth in [3, 4] {
                let rate = try benchmark.successRate(depth: depth, bucketsPerKey: load)
                if rate >= 0.5, thresholds[depth] == nil { thresholds[depth] = load }
                line += pad(String(format: "%.0f%%", rate * 100), 13)
            }
            print(line)
        }
        for depth in [3, 4] {
            print("threshold d=\(depth) (half the trials decode): " + (thresholds[depth].map { String(format: "%.2f buckets/key", $0) } ?? "above \(loads.last!)"))
        }
        print("\ninsert, one core (median of 5 passes over 4M keys): modular, and into 64-bit sums reduced once (the lookup audit's)")
        for insertWidth in [1024, 4096, 65_536, 1 << 20] {
            let sketch = try FermatSketch(width: insertWidth, seed: seed), rates = try benchmark.insertRates(width: insertWidth)
            print("  " + pad("3x\(insertWidth) (\(sketch.bytes / 1024) KiB)", 24)
                  + String(format: "%6.1f M keys/s   64-bit sums %6.1f M keys/s", rates.sketch, rates.accumulator))
        }
        print(String(format: "decode, one core: %.2f M keys/s (200,000 keys, 1.5 buckets/key)", try benchmark.decodeRate()))
        let monitor = try benchmark.monitorRates()
        print(String(format: "lookup monitor, one core (bench-A's owner: 4 tables of 200,000 rows, 409,600 uniform lookups each per window; warm caches):\n"
                     + "  checksum and keep requests %6.1f M/s   count rows %6.1f M lookups/s   close the window %6.1f M rows/s",
                     monitor.checksum, monitor.count, monitor.scan))
        let sketchBytes = try FermatSketch(width: width, seed: seed).bytes
        print("\nexchange per rank, \(lookupsPerStep) lookups per step, a sketch every \(sketchEvery) steps:")
        print("  sketch 3x\(width): \(sketchBytes) B per exchange = \(sketchBytes / sketchEvery) B per step (decodes up to ~\(Int(Double(3 * width) / 1.23)) differing keys)")
        print("  raw 64-bit keys, sent and served: \(2 * 8 * lookupsPerStep) B per step (\(String(format: "%.0f", Double(2 * 8 * lookupsPerStep * sketchEvery) / Double(sketchBytes)))x the sketch)")
    }
}
