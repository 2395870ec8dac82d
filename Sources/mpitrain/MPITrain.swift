import ArgumentParser
import BLASShim
import CPUShim
import Distributed
import Foundation
import Models

@main
struct MPITrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpitrain",
        abstract: "Train DLRM and deep GNNs across MPI ranks, and plan where embedding tables go.",
        discussion: "Run one rank directly, or many with `./launch run -n N -- <command> ...` (mpirun).",
        version: versionText,
        subcommands: [
            BenchCommand.self,
            CostsCommand.self,
            DataCommand.self,
            DLRMCommand.self,
            DreamShardCommand.self,
            GNNCommand.self,
            PlanCommand.self,
            ReportCommand.self,
            SelfTestCommand.self,
            SketchCommand.self,
            TablesCommand.self,
        ])

    /// Parses, runs, and shuts MPI down; errors print one line and exit non-zero. When ranks can
    /// no longer agree (MPI is running with more than one rank), the process exits without
    /// finalising so that mpirun stops the others instead of leaving them waiting.
    static func main() {
        mpitrain_require_cpu_of_build()
        do {
            var command = try parseAsRoot(FlagAliases.rewrite(Array(CommandLine.arguments.dropFirst())))
            try command.run()
            try MPIRuntime.finalize()
        } catch {
            exitReporting(error)
        }
    }

    private static func exitReporting(_ error: Error) -> Never {
        let code = exitCode(for: error)
        if code == .success {
            // Help and version requests: ArgumentParser prints them.
            exit(withError: error)
        }
        // Errors one rank alone meets are printed by that rank; the others, the same on every rank, by the first.
        if error is MPIError || error is SelfTestFailure || error is CommandError || (error as? DatasetError)?.foundByOneRank == true {
            JobReport.error("\(error)")
        } else if JobReport.launchRank == 0 {
            // Parse and validation errors are the same on every rank: the first rank speaks.
            var message = fullMessage(for: error).split(separator: "\n", omittingEmptySubsequences: true).first ?? "invalid arguments"
            if message.hasPrefix("Error: ") { message = message.dropFirst("Error: ".count) }
            message = Substring(FlagAliases.suggestingSubcommand(String(message), arguments: Array(CommandLine.arguments.dropFirst())))
            FileHandle.standardError.write(Data("mpitrain: error: \(message)\n".utf8))
        }
        // mpirun ends every rank as soon as one exits with an error, and could cut short the
        // lines of ranks still printing: every rank gives the others time to print first.
        if JobReport.launchSize > 1 { usleep(500_000) }
        JobReport.exit(code: code == .success ? 1 : code.rawValue)
    }
}

/// `mpitrain --version`: the commit built, how, and the MPI and BLAS libraries loaded.
private let versionText = """
    mpitrain commit \(BuildInfo.commit)\(BuildInfo.localChanges ? " with local changes" : ""), \(buildConfiguration) build for \(String(cString: mpitrain_build_isa()))
    MPI: \(MPIRuntime.libraryVersion)
    BLAS: \(String(cString: openblas_get_config()))
    """

#if DEBUG
private let buildConfiguration = "debug"
#else
private let buildConfiguration = "release"
#endif

/// A failure of a command, already worded for the user.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
