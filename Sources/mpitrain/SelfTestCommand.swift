import ArgumentParser
import Distributed

/// `mpitrain selftest`: checks the communicator on this installation, one `ok` line per rank.
struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check every collective against computed results on this MPI installation.",
        discussion: "Scenarios: all, \(CommunicatorSelfTest.allCases.map(\.rawValue).joined(separator: ", ")). "
            + "hung-peer, size-mismatch and after-finalize are meant to fail with one clear error line.")

    @Argument(help: "Scenarios to run (default: all that should pass).")
    var scenarios: [String] = ["all"]

    @Option(help: "Seconds any blocking call may take before the job is stopped (0: no limit).")
    var timeout: Double = 60

    func validate() throws {
        for name in scenarios where name != "all" && CommunicatorSelfTest(rawValue: name) == nil {
            throw ValidationError("unknown scenario '\(name)'; one of: all, \(CommunicatorSelfTest.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try DeadlineOptions.check(timeout)
    }

    func run() throws {
        var world = try MPIRuntime.world()
        if timeout > 0 { world.timeout = .seconds(timeout) }
        let selected = scenarios.flatMap { $0 == "all" ? CommunicatorSelfTest.passing : [CommunicatorSelfTest(rawValue: $0)!] }
        for scenario in selected {
            try scenario.run(on: world)
            print("ok \(scenario.rawValue) rank \(world.rank) of \(world.size)")
        }
    }
}
