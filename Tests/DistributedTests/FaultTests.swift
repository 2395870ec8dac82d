import Foundation
import Testing

/// Faults an operator meets on a cluster, made on purpose: a rank killed, a rank stopped (as a
/// hung process or a cut link looks to its peers), a coordinator busy for longer than the
/// deadline. The job must end, or go on, and say which rank and what, in one line.
@Suite struct FaultTests {
    static let dlrm = ["dlrm", "--steps", "1000000", "--print-every", "100", "--batch-size", "256"]
    static let gnn = ["gnn", "--mode", "pipeline", "--epochs", "1000000", "--print-every", "1", "--layers", "4", "--hidden", "16"]
        + GNNDistributedTests.graph

    /// A rank killed mid-run: mpirun ends the job, and `launch` names the rank and the signal.
    @Test func aKilledRankIsNamedAndTheJobEnds() throws {
        let run = try MPIRun.mpitrain(Self.dlrm, ranks: 4, timeLimit: 90,
                                      fault: .init(when: { $0.contains("step    200/") }, signal: SIGKILL, rank: 2))
        #expect(run.status != 0)
        #expect(run.stderr.contains("mpitrain: error: rank 2 (on ") && run.stderr.contains("was lost: it ended on signal 9 (Killed)"),
                "\(run.stderr)")
        #expect(!run.stderr.contains("-----"), "mpirun's banners: \(run.stderr)")
        #expect(try #require(run.secondsAfterFault) < 30)
    }

    /// A rank stopped mid-run: the others' watchdogs end the job past the deadline, naming the
    /// call, the step and the rank that did not answer.
    @Test(arguments: [("dlrm", Self.dlrm, "step    200/"), ("gnn", Self.gnn, "epoch    5 "),
                      ("gnn", Self.gnn.map { $0 == "pipeline" ? "hybrid" : $0 } + ["--stages", "2"], "epoch    5 ")])
    func aStoppedRankIsNamedAndTheJobEndsPastTheDeadline(command: String, arguments: [String], after: String) throws {
        let run = try MPIRun.mpitrain(arguments + ["--timeout", "3"], ranks: 4, timeLimit: 90,
                                      fault: .init(when: { $0.contains(after) }, signal: SIGSTOP, rank: 2))
        #expect(run.status != 0)
        let line = run.stderr.split(separator: "\n").first { $0.contains("did not complete within 3 s on 4 ranks") } ?? ""
        #expect(line.hasPrefix("mpitrain: error: \(command == "gnn" ? "epoch" : "step") "), "\(run.stderr)")
        #expect(line.contains("rank 2 did not answer (stopped, hung, cut off or still computing)"), "\(run.stderr)")
        #expect(line.contains("waited in MPI_"), "\(run.stderr)")
        #expect(!run.stderr.contains("-----"), "mpirun's banners: \(run.stderr)")
        #expect(try #require(run.secondsAfterFault) < 3 + 10)
    }

    /// A rank stopped as soon as it starts, before or just after MPI's start-up: the others
    /// end the job past the deadline, naming the call.
    @Test func aRankStoppedAtStartUpEndsTheJobPastTheDeadline() throws {
        let run = try MPIRun.mpitrain(["dlrm", "--steps", "100", "--timeout", "3"], ranks: 2, timeLimit: 60,
                                      fault: .init(when: { _ in true }, signal: SIGSTOP, rank: 1))
        #expect(run.status == 124, "\(run.stderr)")
        #expect(run.stderr.hasPrefix("mpitrain: error: ") && run.stderr.contains("did not complete within 3 s"), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        #expect(try #require(run.secondsAfterFault) < 3 + 10)
    }

    /// The coordinator searches and refines its plan (3 s or more) for longer than the deadline:
    /// the other ranks find it busy and wait on, and the job trains. The deadline leaves rank 0
    /// time to reach its plan under a loaded machine: until then it is not yet busy.
    @Test func aCoordinatorBusyPastTheDeadlineIsWaitedFor() throws {
        let run = try MPIRun.mpitrain(["dlrm", "--steps", "20", "--print-every", "10", "--plan-algo", "neuroshard", "--plan-refine", "10",
                                       "--timeout", "2"], ranks: 2, timeLimit: 120)
        #expect(run.status == 0, "\(run.stderr)")
        let searched = run.stdout.split(separator: "\n").first { $0.hasPrefix("plan: neuroshard, searched in") } ?? ""
        #expect(!searched.isEmpty, "\(run.stdout)")
    }

    @Test(arguments: [["dlrm", "--timeout", "nan"], ["gnn", "--dataset", "csbm", "--timeout", "1e300"], ["selftest", "--timeout=-1"]])
    func aDeadlineThatIsNotSecondsIsRefused(arguments: [String]) throws {
        let run = try MPIRun.mpitrain(arguments)
        #expect(run.status != 0)
        #expect(run.stderr.hasPrefix("mpitrain: error: --timeout must be seconds in 0...1000000, not "), "\(run.stderr)")
    }
}
