import Foundation
import Testing
import TestSupport

/// `bench dlrm --ranks`: a row per rank count and scaling, run inside one mpirun job.
@Suite struct BenchDLRMCommandTests {
    /// Rows for every count and scaling and the ceiling, and the trace of the 2-rank strong
    /// runs: both ranks' phases in every timed step (plus the warm-up steps, numbered 0).
    @Test func scalingPrintsStrongAndWeakRowsAndTraces() throws {
        try withTemporaryDirectory("bench-trace") { directory in
            let trace = directory.appendingPathComponent("trace.json").path
            let run = try MPIRun.mpitrain(["bench", "dlrm", "--configs", "bench-B", "--ranks", "1,2", "--steps", "5", "--runs", "2",
                                           "--trace", trace], ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            let rows = run.stdout.split(separator: "\n").filter { $0.contains("bench-B") }
            #expect(rows.map { $0.split(separator: " ").prefix(4).joined(separator: " ") }
                    == ["bench-B strong 1 128", "bench-B strong 2 128", "bench-B weak 2 256", "bench-B ceiling 2 256"], "\(run.stdout)")
            let events = try JSONDecoder().decode([DLRMCommandTests.TraceEvent].self, from: Data(contentsOf: URL(fileURLWithPath: trace)))
            for rank in 0..<2 {
                let steps = events.filter { $0.pid == rank && $0.name == "embedding forward" }.compactMap(\.step)
                #expect(steps.filter { $0 > 0 } == Array(1...10), "rank \(rank): \(steps)")
            }
        }
    }

    @Test func aTraceWithoutRanksStopsWithOneLine() throws {
        let run = try MPIRun.mpitrain(["bench", "dlrm", "--configs", "bench-B", "--trace", "t.json"])
        #expect(run.status != 0)
        #expect(run.stderr.contains("--trace needs --ranks and one of --configs"), "\(run.stderr)")
    }

    @Test func moreRanksThanTheJobStopsWithOneLine() throws {
        let run = try MPIRun.mpitrain(["bench", "dlrm", "--configs", "bench-B", "--ranks", "1,4"], ranks: 2)
        #expect(run.status != 0)
        #expect(run.stderr == "mpitrain: error: --ranks 1,4 needs a job of at least 4 ranks: "
                + "./launch run -n 4 -- bench dlrm --ranks 1,4\n")
    }
}
