import Distributed
import Foundation
import Models
import Sharding
import TestSupport
import Testing

@Suite struct DLRMCommandTests {
    @Test func trainsAndWritesMetrics() throws {
        let metrics = FileManager.default.temporaryDirectory.appendingPathComponent("dlrm-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: metrics) }
        let arguments = ["dlrm", "--steps", "40", "--batch-size", "64", "--print-every", "20", "--eval-every", "20",
                         "--eval-samples", "512", "--metrics", metrics, "--plan-algo", "greedy-lookup"]
        let run = try MPIRun.mpitrain(arguments)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.lines(startingWith: "step     ").count == 2)
        #expect(run.lines(startingWith: "eval").count == 2)
        #expect(run.lines(startingWith: "final: train loss").count == 1)
        let records = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
        #expect(records.count == 6)
        let objects = records.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == records.count)
        #expect(objects.map { $0["kind"] as? String } == ["config", "train", "eval", "train", "eval", "final"])
        // The configuration: the command line, every option with the value it ran with, the plan and its prediction.
        let config = objects[0], options = config["options"] as? [String: Any] ?? [:]
        #expect(config["command"] as? String == "dlrm" && config["arguments"] as? [String] == arguments && config["ranks"] as? Int == 1)
        #expect(options["steps"] as? Int == 40 && options["batch-size"] as? Int == 64 && options["lr"] as? Double == 0.2)
        #expect(options["arch-mlp-bot"] as? String == "13-64-16" && options["plan-algo"] as? String == "greedy-lookup")
        #expect(options["plan"] is NSNull && options["test-files"] as? [String] == [] && options["random-pooling"] as? Bool == false)
        #expect((config["plan"] as? [String: Any])?["algorithm"] as? String == "greedy-lookup")
        #expect(((config["predicted"] as? [String: Any])?["ranks"] as? [Any])?.count == 1)
        #expect(objects[5]["stepsTrained"] as? Int == 40)
        let clock = ISO8601DateFormatter()
        clock.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let times = objects.compactMap { ($0["time"] as? String).flatMap(clock.date(from:)) }
        #expect(times.count == records.count && times == times.sorted() && abs(times[0].timeIntervalSinceNow) < 60, "\(records)")
    }

    /// The DLRM reference's flags train the same run as MPITrain's; one with no meaning here
    /// says what to use instead; a subcommand's old name for a flag still works; near misses
    /// get a suggestion.
    @Test func referenceFlagsOldNamesAndNearMisses() throws {
        let ours = try MPIRun.mpitrain(["dlrm", "--batch-size", "64", "--steps", "20", "--print-every", "10", "--lr", "0.1",
                                        "--data", "synthetic", "--seed", "3", "--eval-samples", "512"])
        let reference = try MPIRun.mpitrain(["dlrm", "--mini-batch-size", "64", "--num-batches=20", "--print-freq", "10", "--learning-rate", "0.1",
                                             "--data-generation", "random", "--numpy-rand-seed", "3", "--loss-function", "bce",
                                             "--round-targets", "True", "--print-time", "--eval-samples", "512"])
        #expect(ours.status == 0 && reference.status == 0, "\(reference.stderr)")
        #expect(Self.trajectory(ours).losses.count == 2 && Self.trajectory(reference).losses == Self.trajectory(ours).losses)
        for (arguments, message) in [
            (["dlrm", "--use-gpu"], "--use-gpu has no meaning here: MPITrain trains on CPUs; drop it"),
            (["dlrm", "--loss-function", "mse"], "--loss-function mse: dlrm trains with binary cross-entropy only; only --loss-function bce is accepted"),
            (["dlrm", "--save-model", "m.pt"], "--save-model has no meaning here: --checkpoint-dir DIR (with --checkpoint-every N)"),
            (["dlrm", "--stpes", "3"], "Unknown option '--stpes'. Did you mean '--steps'?"),
            (["plann"], "Unexpected argument 'plann'; did you mean 'plan'?"),
        ] {
            let run = try MPIRun.mpitrain(arguments)
            #expect(run.status != 0 && run.stderr == "mpitrain: error: \(message)\n", "\(arguments): \(run.stderr)")
        }
        let old = try MPIRun.mpitrain(["plan", "--tables", MPIRun.repositoryRoot.appendingPathComponent("examples/demo-tables.json").path,
                                       "--ranks", "4", "--memory", "192MiB", "--algo", "greedy-size", "--batch", "256"])
        #expect(old.stdout.hasPrefix("plan: greedy-size, 11 tables on 4 ranks, 192.0 MiB per rank, batch 256;"), "\(old.stderr)")
    }

    /// On a terminal, a run started alone redraws its progress line in place (through `script`,
    /// which gives it a pseudo-terminal); under a launcher it never does.
    @Test func progressRedrawsInPlaceOnATerminal() throws {
        let command = "OPENBLAS_NUM_THREADS=1 '\(try MPIRun.executable().path)' dlrm --steps 40 --batch-size 64 --print-every 10 --eval-samples 512"
        let run = try MPIRun.run(URL(fileURLWithPath: "/usr/bin/script"), ["-qec", command, "/dev/null"], environment: [:], timeLimit: 60)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.components(separatedBy: "\rstep ").count == 5, "\(run.stdout.debugDescription)")
    }

    /// The loss of every reported step and the final held-out AUC (3 decimals) of a run.
    static func trajectory(_ run: MPIRun.Outcome) -> (losses: [Double], auc: String?) {
        func value(after key: String, in line: Substring) -> Substring? {
            guard let range = line.range(of: key + " ") else { return nil }
            return line[range.upperBound...].split(separator: " ").first
        }
        let losses = run.lines(startingWith: "step").compactMap { value(after: "loss", in: $0).flatMap { Double($0) } }
        let auc = run.lines(startingWith: "final:").first.flatMap { value(after: "AUC", in: $0) }.flatMap { Double($0) }
        return (losses, auc.map { String(format: "%.3f", $0) })
    }

    /// Placements of the default model (8 tables of dim 16) for the equality tests.
    enum Layout: String, CaseIterable, Sendable {
        case tableWise = "table-wise", columnWise = "column-wise", mixed

        func plan(ranks: Int) -> ShardingPlan {
            ShardingPlan(ranks: ranks, algorithm: rawValue, placements: (0..<8).map { t in
                let split = self == .columnWise || (self == .mixed && t % 3 == 0)
                let cuts = split ? [0, 3, 8, 11, 16].prefix(ranks).map { $0 } + [16] : [0, 16]
                return .init(table: "t\(t)", shards: zip(cuts, cuts.dropFirst()).enumerated().map { piece, bounds in
                    .init(columns: bounds.0..<bounds.1, rank: split ? (t + piece) % ranks : t % ranks)
                })
            })
        }
    }

    @Test(arguments: [(2, Layout.tableWise), (4, .tableWise), (2, .columnWise), (4, .columnWise), (4, .mixed)])
    func shardedRunsMatchOneRank(ranks: Int, layout: Layout) throws {
        try withTemporaryDirectory("plan") { directory in
            let plan = directory.appendingPathComponent("plan.json").path
            try layout.plan(ranks: ranks).write(to: plan)
            let arguments = ["dlrm", "--steps", "50", "--print-every", "5", "--batch-size", "256", "--eval-samples", "4096",
                             "--num-indices-per-lookup", "3", "--random-pooling", "--seed", "7"]
            try Self.expectSameRun(arguments, plan: plan, ranks: ranks, layout: layout.rawValue)
        }
    }

    /// Runs `arguments` on one rank and on `ranks` ranks by `plan`, and expects the same losses
    /// at every report (10 of them; within 1e-4) and the same final AUC to 3 decimals.
    static func expectSameRun(_ arguments: [String], plan: String, ranks: Int, layout: String) throws {
        let single = try MPIRun.mpitrain(arguments)
        let sharded = try MPIRun.mpitrain(arguments + ["--plan", plan], ranks: ranks)
        #expect(single.status == 0 && sharded.status == 0, "\(single.stderr)\(sharded.stderr)")
        let expected = trajectory(single), measured = trajectory(sharded)
        #expect(expected.losses.count == 10 && measured.losses.count == 10, "\(sharded.stdout)")
        for (a, b) in zip(expected.losses, measured.losses) {
            #expect(abs(a - b) <= 1e-4 * a, "loss \(b) on \(ranks) ranks (\(layout)), \(a) on one")
        }
        #expect(expected.auc != nil && expected.auc == measured.auc,
                "AUC \(measured.auc ?? "-") on \(ranks) ranks (\(layout)), \(expected.auc ?? "-") on one")
    }

    @Test(arguments: [
        ("{\"formatVersion\": 1, \"ranks\": 3, \"algorithm\": \"x\", \"placements\": []}", "plan is for 3 ranks, the job has 2"),
        ("{\"formatVersion\": 7, \"ranks\": 2}", "plan format version 7; this build reads versions 1-2"),
        ("{\"formatVersion\": 1, \"ranks\": 2, \"algorithm\": \"x\", \"placements\": [{\"table\": \"t0\", \"shards\": [{\"columns\": [0, 8], \"rank\": 0}]}]}",
         "table t0: columns 8..<16 are not placed"),
        ("{\"formatVersion\": 1, \"ranks\": 2, \"algorithm\": \"x\", \"placements\": [{\"table\": \"big\", \"shards\": []}]}",
         "plan places table big, which is not in the table specs"),
    ])
    func aPlanThatDoesNotFitTheJobStopsWithOneLine(plan text: String, message: String) throws {
        try withTemporaryDirectory("bad-plan") { directory in
            let plan = directory.appendingPathComponent("plan.json").path
            try Data(text.utf8).write(to: URL(fileURLWithPath: plan))
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "2", "--plan", plan], ranks: 2)
            #expect(run.status != 0)
            let expected = message.hasPrefix("plan format") ? "mpitrain: error: \(plan): \(message)\n" : "mpitrain: error: \(message)\n"
            #expect(run.stderr == expected)
        }
    }

    @Test func aPlanOverTheMemoryLimitNamesTheRank() throws {
        try withTemporaryDirectory("full-plan") { directory in
            let plan = directory.appendingPathComponent("plan.json").path
            try Layout.tableWise.plan(ranks: 2).write(to: plan)
            // 4 tables of 10,000 x 16 floats per rank: 2.4 MiB.
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "2", "--plan", plan, "--memory", "2MiB"], ranks: 2)
            #expect(run.status != 0)
            #expect(run.stderr == "mpitrain: error: rank 0 holds 2.4 MiB, over its 2.0 MiB by 452.0 KiB (largest shard: table t0)\n")
        }
    }

    /// `--plan-refine` refines the coordinator's plan by measurement before every rank trains on it.
    @Test func theCoordinatorRefinesItsPlanByMeasurement() throws {
        let run = try MPIRun.mpitrain(["dlrm", "--steps", "2", "--batch-size", "64", "--eval-samples", "64", "--plan-algo", "round-robin",
                                       "--plan-refine", "6"], ranks: 2)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.lines(startingWith: "refined: ").first?.contains(" oracle measurements") == true, "\(run.stdout)")
        let alone = try MPIRun.mpitrain(["dlrm", "--steps", "2", "--plan-refine", "6"])
        #expect(alone.status != 0 && alone.stderr.contains("--plan-refine needs --plan-algo"), "\(alone.stderr)")
    }

    /// One event of a Chrome trace in its JSON array format.
    struct TraceEvent: Decodable {
        let name: String
        let ph: String
        let pid: Int
        let cat: String?
        let args: [String: Value]?

        enum Value: Decodable {
            case number(Int), text(String)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Int.self) { self = .number(number) } else { self = .text(try container.decode(String.self)) }
            }
        }

        var step: Int? { if case .number(let step)? = args?["step"] { step } else { nil } }
        var processName: String? { if name == "process_name", case .text(let text)? = args?["name"] { text } else { nil } }

        /// The events of a trace file; one cut short by a crash (no closing bracket, or a line
        /// cut in half) is read up to its last whole event, as the trace viewers read it.
        static func read(_ path: String) throws -> [TraceEvent] {
            var text = try String(contentsOfFile: path, encoding: .utf8)
            if !text.hasSuffix("]\n") { text = String(text[..<text.range(of: "}},\n", options: .backwards)!.upperBound].dropLast(2)) + "]" }
            return try JSONDecoder().decode([TraceEvent].self, from: Data(text.utf8))
        }
    }

    /// The trace loads as one process per rank, named by rank and host, with every phase's
    /// category and step.
    @Test func traceShowsEveryRanksPhases() throws {
        try withTemporaryDirectory("dlrm-trace") { directory in
            let trace = directory.appendingPathComponent("trace.json").path
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "3", "--batch-size", "64", "--eval-samples", "64", "--print-every", "2",
                                           "--trace", trace], ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            // Strict JSON once the run is complete.
            let events = try JSONDecoder().decode([TraceEvent].self, from: Data(contentsOf: URL(fileURLWithPath: trace)))
            let names = events.compactMap(\.processName)
            #expect(names.count == 2 && names.enumerated().allSatisfy { $1.hasPrefix("rank \($0) on ") }, "\(names)")
            for rank in 0..<2 {
                let phases = events.filter { $0.pid == rank && $0.ph == "X" }
                // Three training steps, then one evaluation batch (a lookup without a backward).
                #expect(phases.filter { $0.name == "embedding forward" }.map(\.step) == [1, 2, 3, 3])
                #expect(phases.filter { $0.name == "wait output all-to-all" }.allSatisfy { $0.cat == "wait" })
                #expect(phases.filter { $0.name == "allreduce loss" && $0.cat == "communication" }.map(\.step) == [1, 2, 3])
                #expect(phases.filter { $0.name == "wait MLP gradients" && $0.cat == "wait" }.map(\.step) == [1, 2, 3])
            }
        }
    }

    /// A run killed midway leaves the trace of the steps flushed before it died.
    @Test func aKilledRunLeavesALoadableTrace() throws {
        try withTemporaryDirectory("dlrm-trace-killed") { directory in
            let trace = directory.appendingPathComponent("trace.json").path
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "100000", "--batch-size", "64", "--print-every", "10", "--trace", trace],
                                          ranks: 2, fault: MPIRun.Fault(when: { $0.contains("step     30/") }, rank: 1))
            #expect(run.status != 0)
            let events = try TraceEvent.read(trace)
            #expect(events.compactMap(\.processName).count == 2)
            for rank in 0..<2 {
                let steps = Set(events.filter { $0.pid == rank && $0.ph == "X" }.compactMap(\.step))
                #expect(steps.isSuperset(of: 1...30), "rank \(rank): \(steps.sorted())")
            }
        }
    }

    @Test func resumingOnAnotherRankCountMatchesTheUninterruptedRun() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoints-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = ["dlrm", "--print-every", "10", "--batch-size", "256", "--eval-samples", "4096", "--seed", "5"]
        let whole = try MPIRun.mpitrain(arguments + ["--steps", "40"], ranks: 2)
        let first = try MPIRun.mpitrain(arguments + ["--steps", "20", "--checkpoint-dir", directory, "--checkpoint-every", "10"], ranks: 2)
        let resumed = try MPIRun.mpitrain(arguments + ["--steps", "40", "--checkpoint-dir", directory, "--resume"], ranks: 4)
        #expect(whole.status == 0 && first.status == 0 && resumed.status == 0, "\(first.stderr)\(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from \(directory)/step-20 at step 20"), "\(resumed.stdout)")
        let expected = Self.trajectory(whole), measured = Self.trajectory(resumed)
        #expect(measured.losses.count == 2)
        for (a, b) in zip(expected.losses.suffix(2), measured.losses) {
            #expect(abs(a - b) <= 1e-4 * a, "loss \(b) after resuming, \(a) without a stop")
        }
        #expect(expected.auc != nil && expected.auc == measured.auc)
    }

    @Test func aRunKilledAtARandomStepLosesOnlyTheStepsSinceItsLastCheckpoint() throws {
        try withTemporaryDirectory("killed") { directory in
            var random = SplitMix64(seed: 2026)
            let killAt = 12 + random.nextInt(below: 30)
            let arguments = ["dlrm", "--print-every", "1", "--batch-size", "4096", "--eval-samples", "1024", "--seed", "3"]
            let checkpoints = ["--checkpoint-dir", directory.path, "--checkpoint-every", "5"]
            func printedSteps(_ text: String) -> [Int] {
                text.split(separator: "\n").compactMap { line in
                    line.hasPrefix("step") ? line.dropFirst(4).split(separator: "/").first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } : nil
                }
            }
            let killed = try MPIRun.mpitrain(arguments + checkpoints + ["--steps", "5000"], ranks: 2,
                                             fault: .init(when: { printedSteps($0).last ?? 0 >= killAt }))
            #expect(killed.status != 0, "the job ran to its end before it could be stopped")
            let lastPrinted = printedSteps(killed.stdout).last ?? 0
            let newest = try #require(DLRMCheckpoint.newest(in: directory.path), "no checkpoint survived: \(killed.stderr)")
            // Step N is printed before its checkpoint is written, so the kill may cut that save short.
            #expect(newest.step % 5 == 0 && newest.step >= (lastPrinted - 1) / 5 * 5 - 5 && newest.step <= lastPrinted,
                    "newest checkpoint at step \(newest.step), last step printed \(lastPrinted)")
            let end = newest.step + 6
            let resumed = try MPIRun.mpitrain(arguments + checkpoints + ["--steps", "\(end)", "--resume"], ranks: 2)
            let whole = try MPIRun.mpitrain(arguments + ["--steps", "\(end)"], ranks: 2)
            #expect(resumed.status == 0 && whole.status == 0, "\(resumed.stderr)\(whole.stderr)")
            let expected = Self.trajectory(whole).losses.suffix(6), measured = Self.trajectory(resumed).losses
            #expect(measured.count == 6, "\(resumed.stdout)")
            for (a, b) in zip(expected, measured) { #expect(abs(a - b) <= 1e-4 * a, "loss \(b) after the kill, \(a) without") }
        }
    }

    @Test func aDamagedCheckpointStopsWithOneLineAndStaysAsItWas() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoints-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = ["dlrm", "--batch-size", "64", "--eval-samples", "256", "--checkpoint-dir", directory]
        #expect(try MPIRun.mpitrain(arguments + ["--steps", "4"], ranks: 2).status == 0)
        // A save cut short leaves only a partial directory, which resuming ignores.
        try FileManager.default.createDirectory(atPath: "\(directory)/step-8.partial", withIntermediateDirectories: true)
        let file = "\(directory)/step-4/rank-1.bin"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try bytes.prefix(bytes.count - 4).write(to: URL(fileURLWithPath: file))
        let run = try MPIRun.mpitrain(arguments + ["--steps", "8", "--resume", "--checkpoint-every", "2"], ranks: 2)
        #expect(run.status != 0)
        #expect(run.stderr == "mpitrain: error: \(directory): no intact checkpoint to resume from "
                + "(step-4: rank-1.bin holds \(bytes.count - 4) bytes, \(bytes.count) saved)\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)).count == bytes.count - 4, "the checkpoint is left as it was")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/step-6"))
    }

    /// A requeued job: `--resume auto` starts fresh once and resumes after, `--keep-checkpoints`
    /// leaves the newest, and a resume past `--steps` says so instead of training nothing silently.
    @Test func requeuedRunsStartFreshThenResumeAndPruneOldCheckpoints() throws {
        try withTemporaryDirectory("requeue") { directory in
            let checkpoints = directory.appendingPathComponent("ckpt").path
            let base = ["dlrm", "--batch-size", "64", "--print-every", "10", "--eval-samples", "256", "--checkpoint-dir", checkpoints,
                        "--checkpoint-every", "10", "--keep-checkpoints", "2", "--resume", "auto"]
            let first = try MPIRun.mpitrain(base + ["--steps", "30"])
            #expect(first.status == 0 && first.stdout.contains("no checkpoint in \(checkpoints) yet: starting at step 0"), "\(first.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints).sorted() == ["step-20", "step-30"])
            let second = try MPIRun.mpitrain(base + ["--steps", "50"], ranks: 2)
            #expect(second.status == 0 && second.stdout.contains("resumed from \(checkpoints)/step-30 at step 30"), "\(second.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints).sorted() == ["step-40", "step-50"])
            let past = try MPIRun.mpitrain(base + ["--steps", "20"])
            #expect(past.status == 0 && past.stdout.contains("resumed from \(checkpoints)/step-50 at step 50; --steps 20 is already reached: nothing to train"),
                    "\(past.stdout)")
            #expect(past.lines(startingWith: "final: nothing trained; held-out").count == 1, "\(past.stdout)")
            let empty = directory.appendingPathComponent("empty").path
            let required = try MPIRun.mpitrain(["dlrm", "--steps", "5", "--checkpoint-dir", empty, "--resume"])
            #expect(required.status != 0 && required.stderr == "mpitrain: error: \(empty): no complete checkpoint to resume from\n", "\(required.stderr)")
        }
    }

    @Test func batchThatDoesNotSplitOverRanksStopsWithOneLine() throws {
        let run = try MPIRun.mpitrain(["dlrm", "--steps", "1", "--batch-size", "100"], ranks: 3)
        #expect(run.status != 0)
        #expect(run.stderr == "mpitrain: error: --batch-size 100 does not split evenly over 3 ranks\n")
    }

    @Test func badRowStopsWithFileAndLineOrIsSkipped() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).tsv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = (["1"] + (1...13).map(String.init) + (0..<26).map { String(format: "%08x", $0) }).joined(separator: "\t")
        try ([good, "1\t2\t3", good, good].joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let arguments = ["dlrm", "--data", "criteo", "--data-path", path, "--steps", "2", "--batch-size", "2", "--holdout-every", "0",
                         "--arch-embedding-size", Array(repeating: "100", count: 26).joined(separator: "-")]
        let failing = try MPIRun.mpitrain(arguments)
        #expect(failing.status == 1)
        #expect(failing.stderr == "mpitrain: error: \(path):2: expected 40 tab-separated fields (label, 13 integers, 26 categoricals), found 3\n")
        let skipping = try MPIRun.mpitrain(arguments + ["--on-bad-row", "skip"])
        #expect(skipping.status == 0, "\(skipping.stderr)")
        #expect(skipping.stderr.contains("mpitrain: warning: skipped \(path):2:"))
        #expect(skipping.stdout.contains("1 bad rows skipped"))
    }

    @Test(arguments: [
        (["--arch-mlp-bot", "13-0-64"], "--arch-mlp-bot '13-0-64': '0' is not a positive size"),
        (["--arch-mlp-bot", "13-64-32"], "dot interaction needs every embedding as wide as the bottom MLP's output"),
        (["--arch-mlp-top", "64-2"], "the top MLP must end in 1 output"),
        (["--data", "criteo"], "--data criteo needs --data-path"),
        (["--lr", "nan"], "--lr must be a positive number, not nan"),
        (["--lr", "0"], "--lr must be a positive number, not 0.0"),
        (["--nan-policy", "maybe"], "The value 'maybe' is invalid for '--nan-policy <nan-policy>'"),
        (["--threads", "1000000000000"], "--threads must be in 1...1024, found 1000000000000"),
        (["--arch-mlp-bot", "13-1000000000-16"], "need about"),
        (["--batch-size", "1000000000000"], "need about"),
    ] as [([String], String)])
    func badModelSpecsStopAtStart(arguments: [String], message: String) throws {
        let run = try MPIRun.mpitrain(["dlrm", "--steps", "1"] + arguments)
        #expect(run.status != 0)
        #expect(run.stderr.hasPrefix("mpitrain: error: ") && run.stderr.contains(message), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1)
    }

    /// A learning rate that sends the weights to infinity: the step whose loss is not finite
    /// stops every rank with one line, before its update; skipping such steps goes on until
    /// ten in a row show the weights themselves have diverged.
    @Test func aNonFiniteLossStopsTheRunAtItsStep() throws {
        let arguments = ["dlrm", "--steps", "40", "--batch-size", "64", "--lr", "1e30", "--eval-samples", "256"]
        let stopped = try MPIRun.mpitrain(arguments, ranks: 2)
        #expect(stopped.status != 0)
        #expect(stopped.stderr.hasPrefix("mpitrain: error: step 2: the training loss is NaN (lr 1e+30); stopped before applying its update"),
                "\(stopped.stderr)")
        #expect(stopped.stderr.split(separator: "\n").count == 1, "\(stopped.stderr)")
        let skipped = try MPIRun.mpitrain(arguments + ["--nan-policy", "skip"], ranks: 2)
        #expect(skipped.status != 0)
        #expect(skipped.stderr.contains("step 11: the training loss is NaN (lr 1e+30) for the 10th step in a row"), "\(skipped.stderr)")
        let fine = try MPIRun.mpitrain(["dlrm", "--steps", "20", "--batch-size", "64", "--eval-samples", "256", "--nan-policy", "skip"], ranks: 2)
        #expect(fine.status == 0 && !fine.stdout.contains("skipped for a non-finite loss"), "\(fine.stderr)")
    }
}
