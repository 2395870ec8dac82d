import ArgumentParser

/// `mpitrain bench ...`: benchmarks that print tables (and write JSON), never timed tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure communication, data reading and training throughput on this machine.",
        subcommands: [
            BenchCommCommand.self,
            BenchDataCommand.self,
            BenchDLRMCommand.self,
            BenchGNNCommand.self,
        ])
}
