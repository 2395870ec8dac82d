import Foundation
import Testing

/// `bench dlrm --ranks`: a row per rank count and scaling, run inside one mpirun job.
@Suite struct BenchDLRMCommandTests {
    @Test func scalingPrintsStrongAndWeakRows() throws {
        let run = try MPIRun.mpitrain(["bench", "dlrm", "--configs", "bench-B", "--ranks", "1,2", "--steps", "5", "--runs", "1"], ranks: 2)
        #expect(run.status == 0, "\(run.stderr)")
        let rows = run.stdout.split(separator: "\n").filter { $0.contains("bench-B") }
        #expect(rows.count == 3, "\(run.stdout)")
        #expect(rows.map { $0.split(separator: " ").prefix(4).joined(separator: " ") }
                == ["bench-B strong 1 128", "bench-B strong 2 128", "bench-B weak 2 256"], "\(run.stdout)")
    }

    @Test func moreRanksThanTheJobStopsWithOneLine() throws {
        let run = try MPIRun.mpitrain(["bench", "dlrm", "--configs", "bench-B", "--ranks", "1,4"], ranks: 2)
        #expect(run.status != 0)
        #expect(run.stderr == "mpitrain: error: --ranks 1,4 needs a job of at least 4 ranks: "
                + "./launch run -n 4 -- bench dlrm --ranks 1,4\n")
    }
}
