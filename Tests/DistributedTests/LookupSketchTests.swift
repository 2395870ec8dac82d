import Distributed
import Foundation
import Models
import Sharding
import TestSupport
import Testing

/// The trainer measuring itself: lost and duplicated lookup requests and hot rows, decoded on
/// the coordinator from sketches summed over ranks.
@Suite struct LookupSketchTests {
    static let base = ["dlrm", "--steps", "30", "--batch-size", "264", "--print-every", "10", "--eval-samples", "512",
                       "--num-indices-per-lookup", "3", "--sketch-every", "10", "--seed", "5"]

    /// The `kind: sketch` records of a metrics file.
    static func sketchRecords(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["kind"] as? String == "sketch" }
    }

    /// Requests of a record as (table, row, source, count) tuples, comparable.
    static func requests(_ record: [String: Any], _ key: String) -> [[Int]] {
        ((record[key] as? [[String: Any]]) ?? []).map { r in ["table", "row", "source", "count"].map { r[$0] as! Int } }
    }

    /// Round-robin by default; on 3 ranks the mixed table- and column-wise plan; with
    /// `rowWise`, t0 cut into two row ranges and t1 replicated (its lookups stay local).
    @Test(arguments: [(2, 1.0, false), (3, 1.0, false), (2, 0.5, false), (2, 1.0, true)])
    func injectedDropsAndDuplicatesAreNamedExactly(ranks: Int, audited: Double, rowWise: Bool) throws {
        try withTemporaryDirectory("sketch-faults") { directory in
            let metrics = directory.appendingPathComponent("metrics.jsonl").path
            var arguments = Self.base + ["--inject-faults", "drop=0.002,dup=0.001,seed=9", "--metrics", metrics, "--sketch-sample", "\(audited)"]
            let plan = directory.appendingPathComponent("plan.json").path
            if ranks == 3 {
                try DLRMCommandTests.Layout.mixed.plan(ranks: 3).write(to: plan)
                arguments += ["--plan", plan]
            } else if rowWise {
                var layout = DLRMCommandTests.Layout.tableWise.plan(ranks: 2)
                layout.placements[0].shards = [.init(columns: 0..<16, rows: 0..<4000, rank: 1), .init(columns: 0..<16, rows: 4000..<10000, rank: 0)]
                layout.placements[1] = .replicated("t1")
                try layout.write(to: plan)
                arguments += ["--plan", plan]
            }
            let run = try MPIRun.mpitrain(arguments, ranks: ranks)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.components(separatedBy: "the report names exactly these").count - 1 == 3, "\(run.stdout)")
            let records = try Self.sketchRecords(metrics)
            #expect(records.count == 3)
            var injected = 0
            for record in records {
                #expect(record["auditComplete"] as? Bool == true)
                let lost = Self.requests(record, "lost"), duplicated = Self.requests(record, "duplicated")
                #expect(lost == Self.requests(record, "injectedLost"))
                #expect(duplicated == Self.requests(record, "injectedDuplicated"))
                injected += lost.count + duplicated.count
            }
            #expect(injected > 10, "too few faults injected to test anything: \(injected)")
        }
    }

    /// Auditing every request, a sample of bags, or nothing: the same losses bit for bit.
    @Test func theAuditLeavesTrainingAsItIs() throws {
        let plain = ["dlrm", "--steps", "30", "--batch-size", "264", "--print-every", "5", "--eval-samples", "512",
                     "--num-indices-per-lookup", "3", "--seed", "5"]
        func losses(_ extra: [String]) throws -> [Substring] {
            let run = try MPIRun.mpitrain(plain + extra, ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            return run.lines(startingWith: "step ").compactMap { $0.split(separator: " ").drop { $0 != "loss" }.dropFirst().first }
        }
        let off = try losses([])
        #expect(off.count == 6)
        #expect(try losses(["--sketch-every", "10"]) == off)
        #expect(try losses(["--sketch-every", "10", "--sketch-sample", "0.25"]) == off)
    }

    @Test func aHealthyRunSaysSo() throws {
        try withTemporaryDirectory("sketch-healthy") { directory in
            let metrics = directory.appendingPathComponent("metrics.jsonl").path
            let run = try MPIRun.mpitrain(Self.base + ["--metrics", metrics], ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.lines(startingWith: "sketch window").filter { $0.hasSuffix("healthy, every lookup request served exactly once") }.count == 3,
                    "\(run.stdout)")
            let records = try Self.sketchRecords(metrics)
            #expect(records.allSatisfy { $0["healthy"] as? Bool == true })
            #expect(records.allSatisfy { ($0["cpuMillisecondsPerStep"] as? Double ?? 0) > 0 }, "the audit's own CPU time is missing or zero")
        }
    }

    /// A window's checksum cancels whatever order and batches the requests came in, and does
    /// not once a request is lost or duplicated.
    @Test func requestChecksumsCancelOnlyWhenNothingWasLost() {
        let base = LookupKey(window: 3, table: 2, row: 0, source: 1).packed
        var random = SplitMix64(seed: 11)
        let rows = (0..<10_000).map { _ in Int32(random.nextInt(below: 500)) }
        var sent = RequestLog(seed: 7)
        for start in stride(from: 0, to: rows.count, by: 20) { sent.append(rows[start..<(start + 20)], base: base, negative: false) }
        var clean = sent, lost = sent, duplicated = sent
        clean.append(rows.reversed()[...], base: base, negative: true)
        lost.append(rows.dropLast(), base: base, negative: true)
        duplicated.append(rows[...] + [rows[0]], base: base, negative: true)
        #expect(clean.checksum == 0)
        #expect(lost.checksum != 0)
        #expect(duplicated.checksum != 0)
        var otherWindow = sent
        otherWindow.append(rows[...], base: LookupKey(window: 4, table: 2, row: 0, source: 1).packed, negative: true)
        #expect(otherWindow.checksum != 0, "the same rows keyed to another window cancelled")
    }

    /// Hot rows and reuse bins on Zipf traffic against the truth counted from the same synthetic batches;
    /// at 40 lookups a bag the hottest rows pass a row counter's 65,535 within the window.
    @Test(arguments: [(batch: 512, pooling: 4, threshold: 8), (batch: 2048, pooling: 40, threshold: 1000)])
    func hotRowsAreTheTrueTopK(batch: Int, pooling: Int, threshold: Int) throws {
        let k = 10, steps = 10
        try withTemporaryDirectory("sketch-hot") { directory in
            let metrics = directory.appendingPathComponent("metrics.jsonl").path
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "\(steps)", "--batch-size", "\(batch)", "--eval-samples", "512",
                                           "--num-indices-per-lookup", "\(pooling)", "--index-distribution", "zipf:1.1", "--seed", "3",
                                           "--sketch-every", "\(steps)", "--top-k", "\(k)", "--hot-threshold", "\(threshold)", "--metrics", metrics],
                                          ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            let record = try #require(try Self.sketchRecords(metrics).first)
            #expect(record["hotComplete"] as? Bool == true)
            let reported = ((record["hotRows"] as? [[String: Any]]) ?? []).map { ($0["table"] as! Int, $0["row"] as! Int, $0["lookups"] as! Int) }

            let config = try DLRMConfig(bottomMLP: [13, 64, 16], topMLP: [64, 32, 1],
                                        tables: (0..<8).map { EmbeddingTableSpec(name: "t\($0)", rows: 10_000, dim: 16) })
            let clicks = try SyntheticClicks(config: config, pooling: [Int](repeating: pooling, count: 8),
                                             distribution: try IndexDistribution(parsing: "zipf:1.1"), seed: 3)
            var counts = [[Int]](repeating: [Int](repeating: 0, count: 10_000), count: 8)
            for step in 0..<steps {
                let bags = clicks.batch(samples: step * batch ..< (step + 1) * batch).bags
                for t in 0..<8 {
                    for i in Int(bags.offsets[t * batch])..<Int(bags.offsets[(t + 1) * batch]) { counts[t][Int(bags.indices[i])] += 1 }
                }
            }
            if pooling == 40 { #expect(counts.map { $0.max()! }.min()! > Int(UInt16.max), "no table's hottest row passed 65,535") }
            let reuse = try #require(record["reuse"] as? [[Double]])
            for t in 0..<8 {
                var bins = [Double](repeating: 0, count: ReuseBins.count)
                for count in counts[t] where count > 0 { bins[ReuseBins.bin(ofCount: count)] += 1 }
                let used = bins.reduce(0, +)
                #expect(zip(reuse[t], bins).allSatisfy { abs($0 - $1 / used) < 1e-12 }, "table \(t): reuse \(reuse[t]), true \(bins.map { $0 / used })")
            }
            var found = 0
            for t in 0..<8 {
                let truth = counts[t].enumerated().sorted { ($0.element, $1.offset) > ($1.element, $0.offset) }.prefix(k)
                let mine = reported.filter { $0.0 == t }
                #expect(mine.count == k, "table \(t): \(mine.count) hot rows reported")
                for entry in mine where truth.contains(where: { $0.offset == entry.1 }) {
                    found += 1
                    #expect(counts[t][entry.1] == entry.2, "table \(t) row \(entry.1): \(entry.2) lookups reported, \(counts[t][entry.1]) true")
                }
            }
            let precision = Double(found) / Double(max(reported.count, 1)), recall = Double(found) / Double(8 * k)
            #expect(precision >= 0.95 && recall >= 0.95, "precision \(precision), recall \(recall)")
        }
    }

    /// Re-planning from the measured reuse bins reshards through a checkpoint without changing
    /// what is trained.
    @Test func aReplannedRunMatchesTheRunItReplaced() throws {
        try withTemporaryDirectory("sketch-replan") { directory in
            let arguments = ["dlrm", "--steps", "40", "--print-every", "10", "--batch-size", "256", "--num-indices-per-lookup", "3",
                             "--index-distribution", "zipf:1.2", "--arch-embedding-size", "1000-50000-2000-80000-500-30000",
                             "--seed", "4", "--eval-samples", "2048"]
            let plain = try MPIRun.mpitrain(arguments, ranks: 2)
            let replanned = try MPIRun.mpitrain(arguments + ["--sketch-every", "10", "--replan-every", "20", "--replan-gain=-1",
                                                             "--checkpoint-dir", directory.path], ranks: 2)
            #expect(plain.status == 0 && replanned.status == 0, "\(plain.stderr)\(replanned.stderr)")
            #expect(replanned.lines(startingWith: "replan at step 20 from measured reuse").first?.hasSuffix("resharding through a checkpoint") == true,
                    "\(replanned.stdout)")
            let expected = DLRMCommandTests.trajectory(plain), measured = DLRMCommandTests.trajectory(replanned)
            #expect(expected.losses.count == 4 && measured.losses.count == 4)
            for (a, b) in zip(expected.losses, measured.losses) { #expect(abs(a - b) <= 1e-4 * a, "loss \(b) replanned, \(a) not") }
            #expect(expected.auc != nil && expected.auc == measured.auc)
        }
    }

    @Test(arguments: [
        (["--inject-faults", "drop=lots"], "--inject-faults: cannot read 'drop=lots' (expected drop=RATE,dup=RATE,seed=S)"),
        (["--inject-faults", "drop=0.7,dup=0.5"], "fault rates drop=0.7, dup=0.5 must be at least 0 and sum to at most 1"),
        (["--audit-width", "0"], "width 0 is outside 1...268435456"),
        (["--replan-every", "15"], "--replan-every needs --checkpoint-dir and --sketch-every dividing it"),
    ])
    func badSketchOptionsStopWithOneLine(extra: [String], message: String) throws {
        let run = try MPIRun.mpitrain(Self.base + extra)
        #expect(run.status != 0)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }
}
