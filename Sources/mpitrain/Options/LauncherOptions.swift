import ArgumentParser
import Distributed

/// `--launcher` of the commands that start MPI jobs of their own (`plan eval --train`,
/// `costs calibrate --ranks`): how this executable is started on several ranks.
struct LauncherOptions: ParsableArguments {
    @Option(help: "How jobs of several ranks are started: the launcher's words before the mpitrain executable, {ranks} for the rank count, e.g. 'mpirun --allow-run-as-root --oversubscribe -n {ranks}' (default: `launch run -n {ranks} --` of the clone this mpitrain was built in, else `mpirun -n {ranks}`).")
    var launcher: String?

    /// A launcher of this executable on the hosts of `hostfile`.
    func jobs(hostfile: String? = nil) -> JobLauncher {
        JobLauncher(executable: JobLauncher.thisExecutable, launcher: launcher.map { .words($0.split(separator: " ").map(String.init)) },
                    hostfile: hostfile)
    }
}
