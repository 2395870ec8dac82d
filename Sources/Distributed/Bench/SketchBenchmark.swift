import Foundation
import Models
import Sharding

/// FermatSketch figures on this machine: decode success against buckets per key, insert and
/// decode throughput on one core, and the bytes a sketch exchange costs against raw keys.
public struct SketchBenchmark {
    /// Keys per decode trial.
    public var keys = 10_000
    /// Trials per (depth, load) point.
    public var trials = 20
    public var seed: UInt64 = 1

    public init() {}

    /// Fraction of trials that decode completely, per depth, for `keys` random keys with
    /// counts ±1...±5 in `load × keys` buckets in all.
    public func successRate(depth: Int, bucketsPerKey load: Double) throws -> Double {
        var successes = 0
        for trial in 0..<trials {
            var random = SplitMix64(seed: seed, stream: "sketch-bench", index: UInt64(trial))
            var sketch = try FermatSketch(depth: depth, width: Int((load * Double(keys) / Double(depth)).rounded()), seed: random.next())
            for _ in 0..<keys { sketch.insert(random.next(), count: Int64(random.nextInt(below: 5) + 1)) }
            if sketch.decode().complete { successes += 1 }
        }
        return Double(successes) / Double(trials)
    }

    /// Millions of unit inserts per second into a `width`-bucket sketch, and into an
    /// accumulator of its shape (the lookup audit's path), medians of `repeats` passes over
    /// `count` keys, the two alternating.
    public func insertRates(width: Int, count: Int = 4_000_000, repeats: Int = 5) throws -> (sketch: Double, accumulator: Double) {
        var random = SplitMix64(seed: seed)
        let keys = (0..<count).map { _ in random.next() }
        var sketch = try FermatSketch(width: width, seed: seed)
        var accumulator = try FermatAccumulator(width: width, seed: seed)
        var sketchRates: [Double] = [], accumulatorRates: [Double] = []
        keys.withUnsafeBufferPointer { keys in
            for _ in 0..<repeats {
                var start = ContinuousClock.now
                sketch.insert(keys, count: 1)
                sketchRates.append(Double(count) / (ContinuousClock.now - start).seconds / 1e6)
                start = ContinuousClock.now
                accumulator.insert(keys)
                accumulatorRates.append(Double(count) / (ContinuousClock.now - start).seconds / 1e6)
            }
        }
        return (median(sketchRates), median(accumulatorRates))
    }

    /// The lookup monitor's own work per window on one rank, as bench-A's owner of 4 tables of
    /// 200,000 rows sees it: millions of requests per second checksummed and kept (bags of
    /// `pooling`), of lookups counted, and of counters scanned when the window closes (reuse
    /// bins and hot rows); medians of `repeats` windows of `lookups` uniform lookups per table
    /// (bench-A: 2048 samples x 20 lookups x 10 steps). Nothing else runs between the passes,
    /// so the counters stay in cache, as they do not beside a training step's gathers.
    public func monitorRates(tables: Int = 4, rows: Int = 200_000, lookups: Int = 409_600, pooling: Int = 20,
                             repeats: Int = 5) throws -> (checksum: Double, count: Double, scan: Double) {
        var random = SplitMix64(seed: seed)
        let indices = (0..<lookups).map { _ in Int32(random.nextInt(below: rows)) }
        let monitor = try LookupMonitor(every: 10, tableRows: [Int](repeating: rows, count: tables), countedTables: Set(0..<tables),
                                        rank: 0, ranks: 2, hotThreshold: 32, auditWidth: 4096, hotWidth: 4096, faults: nil, seed: seed)
        var reuse = [UInt64](repeating: 0, count: tables * ReuseBins.count)
        var rates: (checksum: [Double], count: [Double], scan: [Double]) = ([], [], [])
        var log = RequestLog(seed: seed)
        for _ in 0..<repeats {
            log.removeAll()
            var start = ContinuousClock.now
            for table in 0..<tables {
                for bag in stride(from: 0, to: lookups, by: pooling) {
                    log.append(indices[bag..<min(bag + pooling, lookups)], base: UInt64(table) << 44, negative: false)
                }
            }
            rates.checksum.append(Double(tables * lookups) / (ContinuousClock.now - start).seconds / 1e6)
            start = ContinuousClock.now
            for table in 0..<tables { monitor.count(indices[...], table: table) }
            rates.count.append(Double(tables * lookups) / (ContinuousClock.now - start).seconds / 1e6)
            start = ContinuousClock.now
            monitor.countHotRowsAndReuse(into: &reuse)
            rates.scan.append(Double(tables * rows) / (ContinuousClock.now - start).seconds / 1e6)
            monitor.startWindow()
        }
        return (median(rates.checksum), median(rates.count), median(rates.scan))
    }

    /// Millions of keys decoded per second at 1.5 buckets per key, median of `repeats`.
    public func decodeRate(keys count: Int = 200_000, repeats: Int = 3) throws -> Double {
        var random = SplitMix64(seed: seed)
        var sketch = try FermatSketch(width: count / 2, seed: seed)
        for _ in 0..<count { sketch.insert(random.next(), count: 1) }
        var rates: [Double] = []
        for _ in 0..<repeats {
            let start = ContinuousClock.now
            let decoded = sketch.decode()
            let seconds = (ContinuousClock.now - start).seconds
            guard decoded.complete, decoded.counts.count == count else { throw SketchError("the throughput sketch did not decode") }
            rates.append(Double(count) / seconds / 1e6)
        }
        return median(rates)
    }
}
