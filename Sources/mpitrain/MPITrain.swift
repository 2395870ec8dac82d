import ArgumentParser

@main
struct MPITrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpitrain",
        abstract: "Train DLRM and deep GNNs across MPI ranks, and plan where embedding tables go.",
        subcommands: [
            BenchCommand.self,
        ])
}
