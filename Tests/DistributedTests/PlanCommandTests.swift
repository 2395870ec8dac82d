import Distributed
import Foundation
import Sharding
import TestSupport
import Testing

/// `mpitrain tables`, `plan`, `plan eval` and `costs` as a user runs them.
@Suite struct PlanCommandTests {
    /// `--out` a pipe or a device (`/dev/null`, `/dev/stdout`): written into, never replaced by
    /// a file (as root, a rename onto /dev/null replaces it for the whole machine).
    @Test func anOutputThatIsAPipeIsWrittenIntoNotReplaced() throws {
        try withTemporaryDirectory("fifo-out") { directory in
            let fifo = directory.appendingPathComponent("pool.fifo").path
            #expect(mkfifo(fifo, 0o600) == 0)
            let read = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var received = Data()
            Thread.detachNewThread {
                received = FileHandle(forReadingAtPath: fifo)?.readDataToEndOfFile() ?? Data()
                read.signal()
            }
            let run = try MPIRun.mpitrain(["tables", "pool", "--count", "3", "--out", fifo])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(read.wait(timeout: .now() + 30) == .success)
            #expect(String(decoding: received, as: UTF8.self).contains("\"rows\""))
            var status = stat()
            #expect(stat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO, "the pipe was replaced")
        }
    }

    @Test func dryRunPrintsEveryRankAndWritesAValidPlan() throws {
        try withTemporaryDirectory("plan-cli") { directory in
            let pool = directory.appendingPathComponent("pool.json").path, plan = directory.appendingPathComponent("plan.json").path
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "24", "--out", pool]).status == 0)
            let run = try MPIRun.mpitrain(["plan", "--tables", pool, "--ranks", "3", "--memory", "4GiB", "--plan-algo", "greedy-lookup",
                                           "--measure", "--out", plan])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.lines(startingWith: "plan: greedy-lookup, 24 tables on 3 ranks").count == 1, "\(run.stdout)")
            #expect(run.stdout.split(separator: "\n").filter { $0.range(of: #"^ +[0-2] "#, options: .regularExpression) != nil }.count == 3)
            #expect(run.stdout.contains("prediction error"))
            let tables = try TableSpecFile.read(pool)
            try ShardingPlan.read(plan).validate(tables: tables, ranks: 3, memoryPerRank: 4 << 30)
        }
    }

    /// A binary copied away from its build finds the shipped cost models beside itself, then
    /// under its install prefix, and `MPITRAIN_RESOURCES` overrides both; a missing one names
    /// every place searched. A damaged model in a place proves which place was read.
    @Test func shippedResourcesAreFoundBesideTheBinaryUnderItsPrefixOrWhereTheEnvironmentSays() throws {
        try withTemporaryDirectory("resources") { directory in
            let binary = directory.appendingPathComponent("bin/mpitrain")
            try FileManager.default.createDirectory(at: binary.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: try MPIRun.executable(), to: binary)
            let shipped = MPIRun.repositoryRoot.appendingPathComponent("Sources/Sharding/Resources")
            func place(_ path: String, damagedModel: Bool) throws -> URL {
                let place = directory.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: place, withIntermediateDirectories: true)
                for name in try FileManager.default.contentsOfDirectory(atPath: shipped.path) {
                    try FileManager.default.copyItem(at: shipped.appendingPathComponent(name), to: place.appendingPathComponent(name))
                }
                if damagedModel { try Data("{}".utf8).write(to: place.appendingPathComponent("neuroshard-cost-model.json")) }
                return place
            }
            let plan = ["plan", "--tables", MPIRun.repositoryRoot.appendingPathComponent("examples/demo-tables.json").path,
                        "--ranks", "4", "--memory", "192MiB", "--plan-algo", "neuroshard"]
            func run(_ environment: [String: String] = [:]) throws -> MPIRun.Outcome {
                try MPIRun.run(binary, plan, environment: environment, timeLimit: 60)
            }
            let prefix = try place("share/mpitrain", damagedModel: true)
            #expect(try run().stderr.contains(prefix.appendingPathComponent("neuroshard-cost-model.json").path))
            let beside = try place("bin/mpitrain-resources", damagedModel: true)
            #expect(try run().stderr.contains(beside.appendingPathComponent("neuroshard-cost-model.json").path))
            let chosen = try place("chosen", damagedModel: false)
            let planned = try run(["MPITRAIN_RESOURCES": chosen.path])
            #expect(planned.status == 0 && planned.stdout.hasPrefix("plan: neuroshard, 11 tables on 4 ranks"), "\(planned.stderr)")
            let missing = try run(["MPITRAIN_RESOURCES": directory.appendingPathComponent("none").path])
            #expect(missing.status == 1)
            #expect(missing.stderr == "mpitrain: error: no all-to-all calibration (comm-*.json) found: searched "
                    + "\(directory.path)/none (MPITRAIN_RESOURCES); set MPITRAIN_RESOURCES to a directory that holds the shipped "
                    + "files, or install with `./launch install PREFIX`\n")
        }
    }

    /// The dry run says which cost artefacts were measured on another machine or an unknown
    /// one (the shipped files predate fingerprints); `--strict-hardware` refuses to plan on them.
    @Test func foreignCostModelsAreNamedAndStrictHardwareRefusesThem() throws {
        try withTemporaryDirectory("strict") { directory in
            let plan = directory.appendingPathComponent("plan.json").path, model = directory.appendingPathComponent("model.json").path
            // The shipped model without its fingerprint: a model from an unknown machine, wherever the test runs.
            let shipped = MPIRun.repositoryRoot.appendingPathComponent("Sources/Sharding/Resources/neuroshard-cost-model.json")
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: shipped)) as? [String: Any])
            json["hardware"] = nil
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: model))
            let arguments = ["plan", "--tables", MPIRun.repositoryRoot.appendingPathComponent("examples/demo-tables.json").path,
                             "--ranks", "4", "--memory", "192MiB", "--plan-algo", "neuroshard", "--cost-model", model, "--out", plan]
            let lenient = try MPIRun.mpitrain(arguments)
            #expect(lenient.status == 0 && lenient.lines(startingWith: "hardware: the NeuroShard cost model was measured on an unknown machine").count == 1,
                    "\(lenient.stdout)")
            try FileManager.default.removeItem(atPath: plan)
            let strict = try MPIRun.mpitrain(arguments + ["--strict-hardware"])
            #expect(strict.status == 1 && strict.stderr.hasPrefix("mpitrain: error: the all-to-all calibration was measured on an unknown machine")
                    && strict.stderr.hasSuffix("remeasures it here (--strict-hardware)\n"), "\(strict.stderr)")
            #expect(!FileManager.default.fileExists(atPath: plan))
        }
    }

    /// A short calibration writes a whole cost set with this machine's fingerprint, which the
    /// planners then use without a note; bad budgets and a directory of other files are refused.
    @Test func calibrationWritesACostSetThePlannersUse() throws {
        try withTemporaryDirectory("calibrate") { directory in
            let set = directory.appendingPathComponent("set").path
            let run = try MPIRun.mpitrain(["costs", "calibrate", "--budget", "45s", "--ranks", "2", "--out", set], timeLimit: 120)
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            #expect(run.lines(startingWith: "fine-tuned on ").first?.contains("median per-rank error on ") == true, "\(run.stdout)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: set))
            #expect(files.isSuperset(of: ["neuroshard-cost-model.json", "speed-reference.json", "dreamshard-model.json", "comm-2.json",
                                          "calibration-records.json"]), "\(files)")
            #expect(try NeuroShardCostModel.read(set + "/neuroshard-cost-model.json").hardware?.differences(from: .current) == [])
            #expect(try SpeedReference.read(set + "/speed-reference.json").hardware?.streamCopyBytesPerSecond ?? 0 > 0)
            #expect(try CommunicationCostModel(reports: [set + "/comm-2.json"]).hardware?.transport == "shared memory")
            #expect(run.lines(startingWith: "DreamShard cost network fine-tuned on the same sets; on the held-out ones: per-rank ").count == 1,
                    "\(run.stdout)")
            #expect(try DreamShardModel.read(set + "/dreamshard-model.json").provenance?.hardware?.differences(from: .current) == [])
            let homeSets = try NeuroShardCostModel.Dataset.read(MPIRun.repositoryRoot.appendingPathComponent("Sources/Sharding/Resources/held-out-sets.json").path)
            #expect(run.lines(startingWith: "on the shipped models' \(homeSets.records.count) held-out sets, measured on ").first?.contains(": NeuroShard ") == true,
                    "\(run.stdout)")
            #expect(run.lines(startingWith: "wrote \(set) in ").first?.hasSuffix("(as shipped: comm-4.json, comm-8.json, held-out-sets.json)") == true,
                    "\(run.stdout)")
            for (algorithm, model) in [("neuroshard", "NeuroShard"), ("dreamshard", "DreamShard")] {
                let plan = try MPIRun.run(try MPIRun.executable(), ["plan", "--tables", MPIRun.repositoryRoot.appendingPathComponent("examples/demo-tables.json").path,
                                                                    "--ranks", "4", "--memory", "192MiB", "--plan-algo", algorithm],
                                          environment: ["MPITRAIN_RESOURCES": set], timeLimit: 60)
                #expect(plan.status == 0 && plan.lines(startingWith: "hardware: the \(model)").isEmpty, "\(plan.stdout)")
            }
            for (arguments, message) in [(["--budget", "0"], "--budget '0': expected a positive time such as 300, 300s or 5m"),
                                         (["--budget=-5m"], "--budget '-5m': expected a positive time such as 300, 300s or 5m"),
                                         (["--budget", "10s"], "--budget 10s: a calibration needs at least 30 s"),
                                         (["--ranks", "2", "--hostfile", directory.appendingPathComponent("nohosts").path],
                                          "measuring the all-to-all calibration on 2 ranks failed (status 2): launch: run: hostfile ")] {
                let bad = try MPIRun.mpitrain(["costs", "calibrate", "--out", set] + arguments, timeLimit: 60)
                #expect(bad.status != 0 && bad.stderr.hasPrefix("mpitrain: error: \(message)"), "\(bad.stderr)")
            }
            #expect(try NeuroShardCostModel.read(set + "/neuroshard-cost-model.json").hardware != nil, "a failed calibration touched the set")
            let other = directory.appendingPathComponent("other")
            try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: other.appendingPathComponent("notes.txt"))
            let refused = try MPIRun.mpitrain(["costs", "calibrate", "--out", other.path], timeLimit: 60)
            #expect(refused.stderr == "mpitrain: error: \(other.path): holds other files; give a new directory or an earlier cost set to replace\n",
                    "\(refused.stderr)")
        }
    }

    /// `--version` names the commit, the build, its vector instructions and the libraries the binary runs on.
    @Test func versionNamesTheCommitAndTheLibraries() throws {
        let run = try MPIRun.mpitrain(["--version"])
        let lines = run.stdout.split(separator: "\n")
        #expect(run.status == 0 && lines.count == 3, "\(run.stdout)\(run.stderr)")
        #expect(lines.first?.range(of: #"^mpitrain commit ([0-9a-f]{12}|unknown)( with local changes)?, (release|debug) build for (AVX-512|AVX2 and FMA|AVX2|AVX|SSE2|NEON|no vector extension)$"#,
                                   options: .regularExpression) != nil, "\(run.stdout)")
        #expect(lines.dropFirst().first?.hasPrefix("MPI: ") == true && lines.last?.hasPrefix("BLAS: ") == true)
    }

    /// A heavy-tailed pool's tasks may hold tables larger than a rank, which every planner cuts by rows.
    @Test func heavyTailedTasksHoldTablesLargerThanARank() throws {
        try withTemporaryDirectory("heavy-tasks") { directory in
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
            let pool = try MPIRun.mpitrain(["tables", "pool", "--shape", "heavy-tailed", "--count", "400", "--out", path("pool.json")])
            #expect(pool.lines(startingWith: "400 tables: rows ").count == 1, "\(pool.stdout)\(pool.stderr)")
            let tasks = try MPIRun.mpitrain(["tables", "tasks", "--pool", path("pool.json"), "--preset", "shard-heavy", "--count", "6",
                                             "--out", path("tasks.json")])
            #expect(tasks.lines(startingWith: "6 shard-heavy tasks from the held-out split (100 tables): 4 ranks").count == 1, "\(tasks.stdout)\(tasks.stderr)")
            let cut = try #require(tasks.lines(startingWith: "").first { $0.hasSuffix("of them hold a table larger than a rank, which every planner must cut by rows") })
            #expect(Int(cut.prefix { $0 != " " })! >= 1, "\(tasks.stdout)")
            let bad = try MPIRun.mpitrain(["tables", "pool", "--shape", "lumpy", "--out", path("x.json")])
            #expect(bad.status != 0 && bad.stderr.contains("lumpy"), "\(bad.stderr)")
        }
    }

    /// `count` shard-small tasks of batch 128 drawn from an 80-table pool, written in `directory`.
    static func smallTasks(_ count: Int, in directory: URL) throws -> String {
        let pool = directory.appendingPathComponent("pool.json").path, tasks = directory.appendingPathComponent("tasks.json").path
        #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "80", "--out", pool]).status == 0)
        #expect(try MPIRun.mpitrain(["tables", "tasks", "--pool", pool, "--preset", "shard-small", "--count", "\(count)",
                                     "--batch-size", "128", "--out", tasks]).status == 0)
        return tasks
    }

    @Test func evalComparesPlannersOnTheSameTasks() throws {
        try withTemporaryDirectory("plan-eval") { directory in
            let tasks = try Self.smallTasks(2, in: directory)
            let json = directory.appendingPathComponent("eval.json").path
            let run = try MPIRun.mpitrain(["plan", "eval", "--tasks", tasks, "--algos", "round-robin,greedy-size,torchrec-perf",
                                           "--repeats", "3", "--json", json])
            #expect(run.status == 0, "\(run.stderr)")
            for name in ["round-robin", "greedy-size", "torchrec-perf"] {
                #expect(run.lines(startingWith: String(repeating: " ", count: 18 - name.count) + name).count == 1, "\(run.stdout)")
            }
            #expect(run.lines(startingWith: "task 1/2 (ETA ").count == 1 && run.lines(startingWith: "task 2/2 (ETA 0 s): ").count == 1, "\(run.stdout)")
            #expect(run.lines(startingWith: "2 tasks, 2 placed by some planner, ").count == 1, "\(run.stdout)")
            #expect(run.stdout.contains("all placed"), "\(run.stdout)")
            // Both clocks' spreads, from the same rounds.
            let spread = try #require(run.lines(startingWith: "oracle repeat spread: two measurements of one plan differ by ").first, "\(run.stdout)")
            #expect(spread.contains(", relative to its task's other plans by ")
                    && spread.contains("isolated oracle, per-thread CPU time scaled by the speed reference (on the wall clock, measured in the same rounds: "))
            // Each feasible plan is measured three times and reported by its median.
            struct Result: Decodable { let feasible: Bool; let measuredMilliseconds: Double?; let measurements: [Double]? }
            let results = try JSONDecoder().decode([Result].self, from: Data(contentsOf: URL(fileURLWithPath: json)))
            #expect(results.count == 6)
            for result in results where result.feasible {
                let sorted = try #require(result.measurements).sorted()
                #expect(sorted.count == 3 && result.measuredMilliseconds == sorted[1])
            }
            let zero = try MPIRun.mpitrain(["plan", "eval", "--tasks", tasks, "--repeats", "0"])
            #expect(zero.status != 0 && zero.stderr.contains("--repeats must be at least 1"), "\(zero.stderr)")
        }
    }

    /// `plan eval --train` trains every plan as its own 2-rank MPI job and sets training's
    /// ordering of the plans against the oracle's.
    @Test func evalTrainsEveryPlanAndComparesTheOrderings() throws {
        try withTemporaryDirectory("plan-eval-train") { directory in
            let tasks = try Self.smallTasks(1, in: directory)
            let json = directory.appendingPathComponent("eval.json").path
            let run = try MPIRun.mpitrain(["plan", "eval", "--tasks", tasks, "--algos", "round-robin,greedy-size,torchrec-perf",
                                           "--train", "4", "--repeats", "2", "--oracle-conditions", "concurrent", "--json", json])
            #expect(run.status == 0, "\(run.stderr)")
            let cores = ProcessInfo.processInfo.activeProcessorCount
            #expect(run.lines(startingWith: "  task 1 (2 ranks, 3 plans): embedding ").count == 1, "\(run.stdout)")
            #expect(run.lines(startingWith: "  median Spearman by embedding ").count == 1, "\(run.stdout)")
            #expect(run.stdout.contains("median Spearman by step ") == (cores >= 2), "\(run.stdout)")
            #expect(run.lines(startingWith: "  table_wise: oracle embedding time off the trained CPU time by ").count == 1, "\(run.stdout)")
            struct Result: Decodable {
                struct Trained: Decodable { let stepMilliseconds: Double; let ranks: [RankPhases] }
                let feasible: Bool
                let trained: Trained?
            }
            let results = try JSONDecoder().decode([Result].self, from: Data(contentsOf: URL(fileURLWithPath: json)))
            for result in results where result.feasible {
                let trained = try #require(result.trained)
                #expect(trained.stepMilliseconds > 0 && trained.ranks.count == 2 && trained.ranks.allSatisfy { $0.embeddingCPUMilliseconds > 0 })
            }
            let negative = try MPIRun.mpitrain(["plan", "eval", "--tasks", tasks, "--train=-1"])
            #expect(negative.status != 0 && negative.stderr.contains("--train must be at least 0"), "\(negative.stderr)")
        }
    }

    /// `plan --refine`, `plan eval --refine` and `plan headroom`: measured moves, kept only when the oracle confirms them.
    @Test func refinementAndHeadroomSearchByMeasurement() throws {
        try withTemporaryDirectory("plan-refine") { directory in
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
            let tasks = try Self.smallTasks(1, in: directory)
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "12", "--seed", "5", "--out", path("twelve.json")]).status == 0)
            let refined = try MPIRun.mpitrain(["plan", "--tables", path("twelve.json"), "--ranks", "2", "--memory", "4GiB", "--batch-size", "128",
                                               "--plan-algo", "round-robin", "--plan-refine", "8", "--oracle-conditions", "concurrent", "--out", path("plan.json")])
            #expect(refined.status == 0, "\(refined.stderr)")
            #expect(refined.lines(startingWith: "refined: ").first?.contains(" oracle measurements") == true, "\(refined.stdout)")
            try ShardingPlan.read(path("plan.json")).validate(tables: try TableSpecFile.read(path("twelve.json")), ranks: 2, memoryPerRank: 4 << 30)
            let eval = try MPIRun.mpitrain(["plan", "eval", "--tasks", tasks, "--algos", "neuroshard,greedy-size", "--plan-refine", "4",
                                            "--oracle-conditions", "concurrent"])
            #expect(eval.lines(startingWith: " neuroshard+refined ").count == 1, "\(eval.stdout)\(eval.stderr)")
            let headroom = try MPIRun.mpitrain(["plan", "headroom", "--tasks", tasks, "--algos", "round-robin,greedy-size", "--budget", "6",
                                                "--repeats", "2", "--oracle-conditions", "concurrent", "--json", path("headroom.json")])
            #expect(headroom.status == 0, "\(headroom.stderr)")
            #expect(headroom.lines(startingWith: "task 1/1 (ETA 0 s): found ").count == 1, "\(headroom.stdout)")
            #expect(headroom.lines(startingWith: "       greedy-size ").count == 1, "\(headroom.stdout)")
            #expect(headroom.lines(startingWith: "oracle repeat spread: ").first?.hasSuffix("concurrent oracle, per-thread CPU time scaled by its yardstick") == true,
                    "\(headroom.stdout)")
            let results = try JSONDecoder().decode([PlanHeadroom.Task].self, from: Data(contentsOf: URL(fileURLWithPath: path("headroom.json"))))
            #expect(results.count == 1 && Set(results[0].costs.keys) == ["round-robin", "greedy-size", PlanHeadroom.found])
            #expect(results[0].measurements <= 6)
            for (arguments, message) in [(["plan", "headroom", "--tasks", tasks, "--budget", "0"], "--budget and --patience must be at least 1"),
                                         (["plan", "--tables", path("twelve.json"), "--ranks", "2", "--memory", "4GiB", "--plan-refine=-1"],
                                          "--plan-refine must be at least 0")] {
                let bad = try MPIRun.mpitrain(arguments)
                #expect(bad.status != 0 && bad.stderr.contains(message), "\(bad.stderr)")
            }
        }
    }

    @Test func costsMeasureTrainAndFeedTheDryRun() throws {
        try withTemporaryDirectory("costs-cli") { directory in
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "40", "--out", path("pool.json")]).status == 0)
            let reference = try MPIRun.mpitrain(["costs", "reference", "--rounds", "20", "--out", path("reference.json")])
            #expect(reference.lines(startingWith: "speed reference: median ").first?.contains(" ms wall time, over 20 rounds") == true,
                    "\(reference.stdout)\(reference.stderr)")
            // A reference from before the oracle timed CPU time cannot scale CPU times.
            try Data(#"{"formatVersion": 1, "milliseconds": 1.5, "rounds": 10}"#.utf8).write(to: URL(fileURLWithPath: path("wall.json")))
            let clocks = try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "4GiB", "--measure",
                                              "--speed-reference", path("wall.json")])
            #expect(clocks.status != 0 && clocks.stderr == "mpitrain: error: \(path("wall.json")) has no per-thread CPU time (it predates it): "
                    + "regenerate it with `costs reference`, or give --oracle-clock wall\n", "\(clocks.stderr)")
            #expect(try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "4GiB", "--measure",
                                         "--speed-reference", path("wall.json"), "--oracle-clock", "wall"]).status == 0)
            for (split, count, batch, out) in [([String](), "16", "256", "costs.json"), (["--held-out"], "8", "256", "unseen.json"),
                                                (["--held-out"], "8", "128", "other-batch.json")] {
                let run = try MPIRun.mpitrain(["costs", "collect", "--pool", path("pool.json"), "--count", count, "--batch-size", batch,
                                               "--speed-reference", path("reference.json"), "--out", path(out)] + split)
                #expect(run.lines(startingWith: "measured \(count) shard sets at batch \(batch)").count == 1, "\(run.stdout)\(run.stderr)")
            }
            let train = try MPIRun.mpitrain(["costs", "train", "--data", path("costs.json"), "--unseen", path("unseen.json"),
                                             "--epochs", "20", "--out", path("model.json")])
            #expect(train.lines(startingWith: "median absolute error on 3 held-out sets: ").count == 1, "\(train.stdout)\(train.stderr)")
            #expect(train.lines(startingWith: "median absolute error on 8 sets of unseen tables: ").count == 1, "\(train.stdout)")
            let plan = try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "4GiB", "--batch-size", "256",
                                            "--cost-model", path("model.json")])
            #expect(plan.lines(startingWith: "plan: neuroshard, 40 tables on 2 ranks").count == 1, "\(plan.stdout)\(plan.stderr)")
            // An ensemble, searched with its own penalty and with another one.
            let ensemble = try MPIRun.mpitrain(["costs", "train", "--data", path("costs.json"), "--epochs", "20", "--members", "3",
                                                "--uncertainty-weight", "1", "--out", path("ensemble.json")])
            #expect(ensemble.lines(startingWith: "trained 3 networks on 13 sets for 20 epochs").count == 1, "\(ensemble.stdout)\(ensemble.stderr)")
            let read = try NeuroShardCostModel.read(path("ensemble.json"))
            #expect(read.members == 3 && read.uncertaintyWeight == 1)
            for weight in [[String](), ["--neuroshard-uncertainty", "2.5"]] {
                let cautious = try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "4GiB", "--batch-size", "256",
                                                    "--cost-model", path("ensemble.json")] + weight)
                #expect(cautious.lines(startingWith: "plan: neuroshard, 40 tables on 2 ranks").count == 1, "\(cautious.stdout)\(cautious.stderr)")
            }
            let noNetworks = try MPIRun.mpitrain(["costs", "train", "--data", path("costs.json"), "--members", "0", "--out", path("none.json")])
            #expect(noNetworks.status != 0 && noNetworks.stderr.contains("--members 0: give 1 to 64 networks"), "\(noNetworks.stderr)")
            #expect(!FileManager.default.fileExists(atPath: path("none.json")))
            // Refinement draws 4-rank tasks of 30-60 tables, so it needs a larger pool.
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "120", "--out", path("large-pool.json")]).status == 0)
            let refine = try MPIRun.mpitrain(["costs", "refine", "--data", path("costs.json"), "--pool", path("large-pool.json"), "--rounds", "1",
                                              "--tasks", "2", "--epochs", "5", "--speed-reference", path("reference.json"),
                                              "--out", path("refined.json"), "--data-out", path("refined-data.json")])
            #expect(refine.lines(startingWith: "    1     2 ").count == 1, "\(refine.stdout)\(refine.stderr)")
            #expect(try NeuroShardCostModel.Dataset.read(path("refined-data.json")).records.count > 16)
            #expect(try NeuroShardCostModel.read(path("refined.json")).batchSize == 256)
            let mismatch = try MPIRun.mpitrain(["costs", "train", "--data", path("costs.json"), "--unseen", path("other-batch.json"),
                                                "--out", path("model.json")])
            #expect(mismatch.status != 0)
            #expect(mismatch.stderr == "mpitrain: error: \(path("other-batch.json")): measured at batch 128, the training records at 256\n")
        }
    }

    @Test func dreamShardTrainsOnMeasuredPlansAndPlans() throws {
        try withTemporaryDirectory("dreamshard-cli") { directory in
            func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "60", "--out", path("pool.json")]).status == 0)
            let train = try MPIRun.mpitrain(["dreamshard", "train", "--pool", path("pool.json"), "--tasks", "4", "--min-tables", "6",
                                             "--max-tables", "10", "--batch-size", "128", "--iterations", "2", "--measured-plans", "2",
                                             "--cost-steps", "20", "--policy-batches", "2", "--episodes", "3", "--out", path("model.json")])
            #expect(train.status == 0, "\(train.stderr)")
            #expect(train.lines(startingWith: "trained in ").first?.contains("on 4 measured plans") == true, "\(train.stdout)")
            let plan = try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "4GiB", "--plan-algo", "dreamshard",
                                            "--dreamshard-model", path("model.json"), "--out", path("plan.json")])
            #expect(plan.lines(startingWith: "plan: dreamshard, 60 tables on 2 ranks").count == 1, "\(plan.stdout)\(plan.stderr)")
            try ShardingPlan.read(path("plan.json")).validate(tables: try TableSpecFile.read(path("pool.json")), ranks: 2, memoryPerRank: 4 << 30)
            let tight = try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "1MiB", "--plan-algo", "dreamshard",
                                             "--dreamshard-model", path("model.json")])
            #expect(tight.status != 0)
            #expect(tight.stderr.hasPrefix("mpitrain: error: the 60 tables need ") && tight.stderr.hasSuffix("; 2 ranks of 1.0 MiB hold 2.0 MiB\n"),
                    "\(tight.stderr)")
            let text = try String(contentsOfFile: path("model.json"), encoding: .utf8)
            try Data(text.replacingOccurrences(of: "\"formatVersion\" : \(DreamShardModel.formatVersion)", with: "\"formatVersion\" : 9").utf8)
                .write(to: URL(fileURLWithPath: path("old.json")))
            let old = try MPIRun.mpitrain(["plan", "--tables", path("pool.json"), "--ranks", "2", "--memory", "4GiB", "--plan-algo", "dreamshard",
                                           "--dreamshard-model", path("old.json")])
            #expect(old.status != 0)
            #expect(old.stderr == "mpitrain: error: \(path("old.json")): DreamShard model format version 9; this build reads version \(DreamShardModel.formatVersion)\n")
            for (arguments, message) in [
                (["--ranks", "0"], "--ranks must be in 1...65536, found 0"),
                (["--presets", "shard-mid", "--ranks", "2"], "--presets sets the tasks' shapes; leave out --ranks, --min-tables, --max-tables and --memory-fraction"),
                (["--presets", "shard-heavy"], "--presets: shard-heavy tasks hold tables larger than a rank, which DreamShard's training places whole"),
                (["--presets", "shard-small,shard-large"], "shard-large needs at least 100 tables; the pool split has 45"),
            ] {
                let bad = try MPIRun.mpitrain(["dreamshard", "train", "--pool", path("pool.json"), "--out", path("x.json")] + arguments)
                #expect(bad.status != 0)
                #expect(bad.stderr.contains(message) && bad.stderr.split(separator: "\n").count <= 3, "\(bad.stderr)")
                #expect(!FileManager.default.fileExists(atPath: path("x.json")))
            }
        }
    }

    @Test(arguments: [
        (["--memory", "lots"], "memory 'lots': expected a positive size up to 1 PiB, such as 2GiB, 512MiB or 1000000"),
        (["--memory", "1e10TiB"], "memory '1e10TiB': expected a positive size up to 1 PiB, such as 2GiB, 512MiB or 1000000"),
        (["--memory", "1GiB", "--ranks", "1000000000000"], "--ranks must be in 1...65536, found 1000000000000"),
        (["--memory", "1KiB"], "table pool1 (5.0 MiB) fits on no rank, nor cut by rows over up to 2 ranks: they have 2.0 KiB free in all, 5.0 MiB short"),
        (["--memory", "1GiB", "--neuroshard-uncertainty=-1"], "--neuroshard-uncertainty -1.0: give a number of standard deviations, 0 or more"),
        (["--memory", "1GiB", "--plan-algo", "magic"], "no planner 'magic' (" + PlannerCatalog.names.joined(separator: ", ") + ")"),
        (["--memory", "1GiB", "--measure", "--oracle-rounds", "0"], "--oracle-rounds must be in 1...10000, found 0"),
        (["--memory", "1GiB", "--measure", "--oracle-builds", "1000000000000"], "--oracle-builds must be in 1...1000, found 1000000000000"),
    ])
    func badInputStopsWithOneLine(arguments: [String], message: String) throws {
        try withTemporaryDirectory("plan-bad") { directory in
            let pool = directory.appendingPathComponent("pool.json").path, plan = directory.appendingPathComponent("plan.json").path
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "5", "--out", pool]).status == 0)
            try Data("keep".utf8).write(to: URL(fileURLWithPath: plan))
            let run = try MPIRun.mpitrain(["plan", "--tables", pool, "--ranks", "2", "--plan-algo", "greedy-dim", "--out", plan] + arguments)
            #expect(run.status != 0)
            #expect(run.stderr == "mpitrain: error: \(message)\n")
            #expect(try String(contentsOfFile: plan, encoding: .utf8) == "keep", "a failed run replaced the output file")
        }
    }

    /// Long commands check where they will write before they start, not after minutes of work.
    @Test(arguments: [
        ["costs", "collect", "--pool", "POOL", "--count", "100000", "--out", "MISSING/records.json"],
        ["costs", "reference", "--out", "MISSING/reference.json"],
        ["dreamshard", "train", "--pool", "POOL", "--out", "MISSING/model.json"],
        ["plan", "eval", "--tasks", "POOL", "--json", "MISSING/eval.json"],
        ["bench", "dlrm", "--json", "MISSING/bench.json"],
    ])
    func anUnwritableOutputStopsBeforeTheWork(arguments: [String]) throws {
        try withTemporaryDirectory("outputs") { directory in
            let pool = directory.appendingPathComponent("pool.json").path, missing = directory.appendingPathComponent("missing").path
            #expect(try MPIRun.mpitrain(["tables", "pool", "--count", "5", "--out", pool]).status == 0)
            let run = try MPIRun.mpitrain(arguments.map { $0.replacingOccurrences(of: "POOL", with: pool).replacingOccurrences(of: "MISSING", with: missing) },
                                          timeLimit: 20)
            #expect(run.status != 0 && run.seconds < 10)
            #expect(run.stderr.hasPrefix("mpitrain: error: \(missing)/") && run.stderr.contains(": cannot write the ")
                    && run.stderr.hasSuffix("there (no directory \(missing))\n"), "\(run.stderr)")
        }
    }
}
