import Foundation
import Models
import TestSupport
import Testing

/// `mpitrain dlrm` and `mpitrain data preprocess` on Criteo data as users bring it.
@Suite struct CriteoCommandTests {
    /// `count` Criteo lines, the shared sample's when it is beside the clone, else made here.
    static func lines(_ count: Int) throws -> [String] {
        var random = SplitMix64(seed: 3)
        return (0..<count).map { _ in
            let integers = (0..<13).map { _ in String(random.next() % 300) }
            let categoricals = (0..<26).map { _ in String(format: "%08x", UInt32(truncatingIfNeeded: random.next() % 5000)) }
            return ([random.next() % 4 == 0 ? "1" : "0"] + integers + categoricals).joined(separator: "\t")
        }
    }

    static let model = ["--arch-sparse-feature-size", "8", "--arch-mlp-bot", "13-16-8", "--arch-mlp-top", "16-1",
                        "--arch-embedding-size", "1000", "--print-every", "5", "--eval-samples", "256"]

    /// Runs `body` with a directory holding data.tsv of `count` lines.
    static func withData<R>(_ count: Int, _ body: (URL, String) throws -> R) throws -> R {
        try withTemporaryDirectory("criteo-cli") { directory in
            let tsv = directory.appendingPathComponent("data.tsv").path
            try (lines(count).joined(separator: "\n") + "\n").write(toFile: tsv, atomically: true, encoding: .utf8)
            return try body(directory, tsv)
        }
    }

    @Test func tsvGzipAndPreprocessedTrainTheSameOnOneAndTwoRanks() throws {
        try Self.withData(2000) { directory, tsv in
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
            gzip.arguments = ["-kf", tsv]
            try gzip.run()
            gzip.waitUntilExit()
            let binary = directory.appendingPathComponent("bin").path
            let preprocess = try MPIRun.mpitrain(["data", "preprocess", "--data-path", tsv + ".gz", "--out", binary, "--arch-embedding-size", "1000"])
            #expect(preprocess.status == 0 && preprocess.stdout.hasPrefix("wrote \(binary): 2000 samples"), "\(preprocess.stderr)")
            let run = ["dlrm", "--steps", "20", "--batch-size", "64"] + Self.model
            let reference = try MPIRun.mpitrain(run + ["--data", "criteo", "--data-path", tsv])
            #expect(reference.status == 0, "\(reference.stderr)")
            let expected = DLRMCommandTests.trajectory(reference)
            #expect(expected.losses.count == 4 && expected.auc != nil)
            for (arguments, ranks) in [(["--data", "criteo", "--data-path", tsv + ".gz"], 2), (["--data", "criteo-bin", "--data-path", binary], 1),
                                       (["--data", "criteo-bin", "--data-path", binary], 2)] {
                let other = try MPIRun.mpitrain(run + arguments, ranks: ranks)
                #expect(other.status == 0, "\(other.stderr)")
                let trajectory = DLRMCommandTests.trajectory(other)
                #expect(zip(trajectory.losses, expected.losses).allSatisfy { abs($0 - $1) < 1e-4 } && trajectory.auc == expected.auc,
                        "\(arguments) on \(ranks) ranks: \(trajectory) against \(expected)")
                if ranks == 2 { #expect(other.stdout.contains("data wait per rank"), "\(other.stdout)") }
            }
        }
    }

    @Test func standardInputIsReadOnceAndItsEndEndsTheRun() throws {
        try Self.withData(1000) { directory, tsv in
            let run = try MPIRun.mpitrain(["dlrm", "--data", "criteo", "--data-path", "-", "--steps", "100", "--batch-size", "64"] + Self.model,
                                          timeLimit: 60, input: tsv)
            #expect(run.status == 0, "\(run.stderr)")
            // 1,000 lines, every 10th held out: 900 to train on, 14 whole batches of 64.
            #expect(run.stdout.contains("the data ended after step 14 of 100 (read once); training stopped there"), "\(run.stdout)")
            #expect(run.lines(startingWith: "final:").count == 1)
            // /dev/stdin on a pipe (`zcat day_0.gz | mpitrain ...`) is read once too, never rewound.
            let command = (["cat", tsv, "|", try MPIRun.executable().path, "dlrm", "--data", "criteo", "--data-path", "/dev/stdin",
                            "--steps", "100", "--batch-size", "64"] + Self.model).joined(separator: " ")
            let named = try MPIRun.run(URL(fileURLWithPath: "/bin/sh"), ["-c", command], environment: ["OPENBLAS_NUM_THREADS": "1"], timeLimit: 60)
            #expect(named.status == 0 && named.stdout.contains("the data ended after step 14 of 100"), "\(named.stderr)")

            let cut = directory.appendingPathComponent("cut.tsv").path
            let text = try String(contentsOfFile: tsv, encoding: .utf8)
            try String(text.prefix(text.count / 2)).write(toFile: cut, atomically: true, encoding: .utf8)
            let cutShort = try MPIRun.mpitrain(["dlrm", "--data", "criteo", "--data-path", "-", "--steps", "100", "--batch-size", "64"] + Self.model,
                                               timeLimit: 60, input: cut)
            #expect(cutShort.status == 1)
            #expect(cutShort.stderr.hasPrefix("mpitrain: error: standard input:") && cutShort.stderr.hasSuffix("(the data ends mid-line, without a newline)\n")
                    && cutShort.stderr.split(separator: "\n").count == 1, "\(cutShort.stderr)")

            let twoRanks = try MPIRun.mpitrain(["dlrm", "--data", "criteo", "--data-path", "-", "--steps", "10", "--batch-size", "64"] + Self.model,
                                               ranks: 2, input: tsv)
            #expect(twoRanks.status != 0 && twoRanks.stderr.contains("under mpirun standard input reaches only rank 0"), "\(twoRanks.stderr)")
        }
    }

    /// A bad row in one rank's slice is parsed by that rank alone, which names it; skipped, every
    /// rank agrees on the samples and the run matches one rank's.
    @Test func aBadRowIsNamedByTheRankThatParsesIt() throws {
        try Self.withData(400) { directory, tsv in
            var lines = try String(contentsOfFile: tsv, encoding: .utf8).split(separator: "\n").map(String.init)
            // Line 107 is the 97th training sample (every 10th line held out): the 33rd of the
            // second batch of 64, so rank 1's of two.
            lines[106] = "1\t2\t3"
            let bad = directory.appendingPathComponent("bad.tsv").path
            try (lines.joined(separator: "\n") + "\n").write(toFile: bad, atomically: true, encoding: .utf8)
            let run = ["dlrm", "--data", "criteo", "--data-path", bad, "--steps", "4", "--batch-size", "64"] + Self.model
            let failed = try MPIRun.mpitrain(run, ranks: 2)
            #expect(failed.status != 0)
            #expect(failed.stderr == "mpitrain: error: rank 1 of 2: \(bad):107: expected 40 tab-separated fields (label, 13 integers, 26 categoricals), found 3\n",
                    "\(failed.stderr)")
            let one = try MPIRun.mpitrain(run + ["--on-bad-row", "skip"])
            let two = try MPIRun.mpitrain(run + ["--on-bad-row", "skip"], ranks: 2)
            #expect(one.status == 0 && two.status == 0, "\(one.stderr) \(two.stderr)")
            let (a, b) = (DLRMCommandTests.trajectory(one), DLRMCommandTests.trajectory(two))
            #expect(zip(a.losses, b.losses).allSatisfy { abs($0 - $1) < 1e-4 } && a.auc == b.auc, "\(a) against \(b)")
            #expect(two.stderr.components(separatedBy: "skipped \(bad):107:").count == 2, "one warning, from rank 0: \(two.stderr)")
        }
    }

    @Test func testFilesAreTheHeldOutSet() throws {
        try Self.withData(1000) { directory, tsv in
            let test = directory.appendingPathComponent("day_23.tsv").path
            try (Self.lines(300).joined(separator: "\n") + "\n").write(toFile: test, atomically: true, encoding: .utf8)
            let run = try MPIRun.mpitrain(["dlrm", "--data", "criteo", "--data-path", tsv, "--test-files", test, "--steps", "10", "--batch-size", "64"]
                                          + Self.model, ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("data: Criteo TSV \(tsv), held out: \(test)"), "\(run.stdout)")
            #expect(run.stdout.contains("held-out 256 samples"), "\(run.stdout)")
        }
    }

    @Test func flagsAndOutputPathsAreCheckedBeforeTheFirstStep() throws {
        try Self.withData(200) { directory, tsv in
            let base = ["dlrm", "--steps", "5", "--batch-size", "16"] + Self.model
            let missing = directory.appendingPathComponent("no/such").path
            for (arguments, message) in [
                (["--data-path", tsv], "--data-path, --test-files and --holdout-every read Criteo data: add --data criteo (TSV, gzip) or --data criteo-bin (preprocessed)"),
                (["--data", "criteo", "--data-path", tsv, "--trace", missing + "/trace.json"], "\(missing)/trace.json: cannot write the trace there (no directory \(missing))"),
                (["--data", "criteo", "--data-path", tsv, "--metrics", directory.path], "\(directory.path): a directory; the metrics file is a file"),
                (["--data", "criteo", "--data-path", tsv, "--checkpoint-dir", tsv + "/ckpt"], "\(tsv)/ckpt: cannot create the checkpoint directory there"),
                (["--data", "criteo-bin", "--data-path", directory.path], "\(directory.path): no criteo.json: not a preprocessed dataset"),
            ] as [([String], String)] {
                let run = try MPIRun.mpitrain(base + arguments)
                #expect(run.status != 0 && run.stderr.hasPrefix("mpitrain: error: \(message)"), "\(arguments): \(run.stderr)")
                #expect(run.lines(startingWith: "step").isEmpty && run.stderr.split(separator: "\n").count == 1, "\(run.stdout)")
            }
        }
    }
}
