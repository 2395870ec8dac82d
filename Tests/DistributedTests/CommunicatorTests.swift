import Distributed
import Foundation
import Testing

/// Every collective checked under mpirun at 1-4 ranks, and the ways a job must fail cleanly.
@Suite(.serialized)
struct CommunicatorTests {
    static let passing = CommunicatorSelfTest.passing.map(\.rawValue)

    @Test(arguments: [1, 2, 3, 4])
    func everyScenarioPasses(ranks: Int) throws {
        let run = try MPIRun.mpitrain(["selftest", "all", "--timeout", "60"], ranks: ranks)
        #expect(run.status == 0, "exit \(run.status): \(run.stderr)")
        for scenario in Self.passing {
            let oks = run.lines(startingWith: "ok \(scenario) rank ")
            #expect(oks.count == ranks, "\(scenario): \(oks.count) of \(ranks) ranks printed ok\n\(run.stderr)")
        }
    }

    @Test(arguments: [2, 4])
    func aHungRankStopsTheJobWithinTheDeadline(ranks: Int) throws {
        let run = try MPIRun.mpitrain(["selftest", "hung-peer", "--timeout", "2"], ranks: ranks, timeLimit: 60)
        #expect(run.status != 0)
        // The waiting ranks hold a roll call; the lowest of them speaks for all, naming the hung rank.
        let waited = ranks == 2 ? "rank 0" : "ranks " + (0..<ranks - 1).map(String.init).joined(separator: ", ")
        #expect(run.stderr == "mpitrain: error: MPI_Allreduce did not complete within 2 s on \(ranks) ranks: \(waited) waited in "
                + "MPI_Allreduce; rank \(ranks - 1) did not answer (stopped, hung, cut off or still computing); ending the job\n")
        #expect(run.seconds < 20, "took \(run.seconds) s")
    }

    @Test(arguments: [1, 3])
    func disagreeingAlltoallvSizesThrowOnEveryRank(ranks: Int) throws {
        let run = try MPIRun.mpitrain(["selftest", "size-mismatch"], ranks: ranks)
        #expect(run.status == 1)
        let target = ranks > 1 ? 1 : 0
        let errors = run.stderr.split(separator: "\n").filter {
            $0.contains("MPI_Alltoallv failed: MPI_ERR_TRUNCATE: rank 0 sends 12 bytes to rank \(target), which expects 8")
        }
        #expect(errors.count == ranks, "\(run.stderr)")
        #expect(!run.stderr.contains("mpirun detected"), "mpirun's banner should be quiet: \(run.stderr)")
    }

    @Test func callsAfterFinalizeThrow() throws {
        let run = try MPIRun.mpitrain(["selftest", "after-finalize"])
        #expect(run.status == 1)
        #expect(run.stderr == "mpitrain: error: MPI_Allreduce failed: MPI_ERR_OTHER: MPI has been finalized; "
                + "no MPI call is allowed after MPI_Finalize (class 16, code 16)\n")
    }

    @Test(arguments: [1, 2])
    func unknownFlagsGiveOneLine(ranks: Int) throws {
        let run = try MPIRun.mpitrain(["selftest", "--no-such-flag"], ranks: ranks)
        #expect(run.status != 0)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(run.stderr)")
        #expect(lines.first?.contains("--no-such-flag") == true, "\(run.stderr)")
    }

    @Test func benchCommPrintsEveryOperationAndWritesJSON() throws {
        let json = FileManager.default.temporaryDirectory.appendingPathComponent("bench-comm-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: json) }
        let run = try MPIRun.mpitrain(["bench", "comm", "--max-size", "4096", "--iterations", "20", "--json", json.path], ranks: 2)
        #expect(run.status == 0, "\(run.stderr)")
        for operation in ["allreduce", "alltoall", "alltoallv", "broadcast", "ping-pong"] {
            #expect(run.stdout.contains("\n\(operation)\n"), "no \(operation) table")
        }
        struct Report: Decodable {
            struct Row: Decodable { let operation: String; let bytes: Int; let averageMicroseconds: Double }
            let ranks: Int
            let rows: [Row]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: json))
        #expect(report.ranks == 2)
        // 8 B to 4 KiB is 10 sizes, for each of 5 operations.
        #expect(report.rows.count == 50)
        #expect(report.rows.allSatisfy { $0.averageMicroseconds > 0 })
    }

    /// `--reference` makes the same calls on plain MPI from C beside the communicator's: a C
    /// column and a ratio on every row, and a median ratio per operation; both sides time real
    /// calls, so a 64 KiB all-to-all takes longer than an 8-byte one on either. A rank taken
    /// off its core can make any one small call slow, so the sizes' order gets three runs.
    @Test func benchCommComparesWithPlainMPI() throws {
        var timings: [String] = []
        for _ in 0..<3 {
            let run = try MPIRun.mpitrain(["bench", "comm", "--reference", "--ops", "alltoallv", "--ops", "allreduce", "--max-size", "65536",
                                           "--iterations", "40"], ranks: 2)
            #expect(run.status == 0, "\(run.stderr)")
            let rows = run.stdout.split(separator: "\n").map { $0.split(separator: " ") }.filter { $0.count == 8 && Int($0[0]) != nil }
            #expect(rows.count == 28, "\(run.stdout)")
            let reference = rows.compactMap { Double($0[6]) }, ratios = rows.compactMap { Double($0[7]) }
            #expect(reference.count == 28 && ratios.allSatisfy { $0 > 0 }, "\(run.stdout)")
            let summary = run.lines(startingWith: "communicator over plain C MPI, median ratio over sizes: ").first
            #expect(summary?.range(of: #"allreduce [0-9.]+ \(4 KiB-2 MiB\), alltoallv [0-9.]+ \(4 KiB-2 MiB\)$"#, options: .regularExpression) != nil,
                    "\(run.stdout)")
            guard reference.count == 28 else { return }
            if reference[13] > reference[0] && reference[27] > reference[14] { return }
            timings.append(run.stdout)
        }
        Issue.record("in three runs a 64 KiB call on plain MPI never took longer than an 8-byte one:\n\(timings.joined(separator: "\n"))")
    }
}
