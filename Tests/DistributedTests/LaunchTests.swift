import Foundation
import TestSupport
import Testing

/// `./launch`: the mpirun (or srun) line it builds for each environment and option, its
/// refusals of bad input, `install`, and runs on a node with only mpirun and a binary.
@Suite(.serialized)
struct LaunchTests {
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// Runs `./launch run --dry-run arguments` and returns its outcome.
    static func dryRun(_ arguments: [String], environment: [String: String] = [:]) throws -> MPIRun.Outcome {
        try MPIRun.launch(["run", "--dry-run"] + arguments, environment: environment)
    }

    /// This process's PATH without any directory that holds an srun, so no test depends on
    /// whether the machine has Slurm.
    static let pathWithoutSrun = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        .split(separator: ":").filter { !FileManager.default.isExecutableFile(atPath: "\($0)/srun") }.joined(separator: ":")

    /// The variables Slurm sets in a one-node allocation of `tasks` tasks on this machine.
    static func slurmJob(tasks: Int) -> [String: String] {
        ["SLURM_JOB_ID": "4242", "SLURM_JOBID": "4242", "SLURM_NTASKS": "\(tasks)", "SLURM_NPROCS": "\(tasks)",
         "SLURM_JOB_NODELIST": "localhost", "SLURM_NODELIST": "localhost", "SLURM_TASKS_PER_NODE": "\(tasks)",
         "SLURM_JOB_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_JOB_CPUS_PER_NODE": "\(tasks)",
         "PATH": pathWithoutSrun]
    }

    /// A directory of symbolic links to `commands` as found on this process's PATH, and `extra`
    /// name-target pairs.
    static func commands(_ commands: [String], extra: [String: String] = [:], in directory: URL) throws -> URL {
        let bin = directory.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for command in commands {
            let found = try #require(path.map { "\($0)/\(command)" }.first { FileManager.default.isExecutableFile(atPath: $0) },
                                     "\(command) is not on PATH")
            try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent(command).path, withDestinationPath: found)
        }
        for (name, target) in extra {
            try FileManager.default.createSymbolicLink(atPath: bin.appendingPathComponent(name).path, withDestinationPath: target)
        }
        return bin
    }

    /// What `launch run` needs on a node to start a job: bash, the coreutils it calls, awk and mpirun.
    static let runCommands = ["bash", "env", "dirname", "id", "nproc", "mktemp", "mkfifo", "rm", "sed", "awk", "mpirun"]

    @Test func dryRunShowsTheWholeMpirunLine() throws {
        let run = try Self.dryRun(["-n", String(Self.cores + 1), "--threads", "3", "--", "bench", "comm"])
        #expect(run.status == 0, "\(run.stderr)")
        let line = run.stdout
        #expect(line.contains("mpirun -n \(Self.cores + 1) --bind-to none"))
        #expect(line.contains("--oversubscribe"))
        #expect(line.contains("-x OPENBLAS_NUM_THREADS=3"))
        #expect(line.hasSuffix("mpitrain bench comm\n"))
        #expect(line.contains("--allow-run-as-root") == (getuid() == 0))
        #expect(run.stderr.isEmpty, "\(run.stderr)")
        let fits = try Self.dryRun(["-n", "1", "--", "selftest"])
        #expect(!fits.stdout.contains("--oversubscribe"))
    }

    /// Both ways of giving mpirun its own options put the same words before the executable.
    @Test func mpirunOptionsPassThroughInBothForms() throws {
        let afterMPI = try Self.dryRun(["-n", "2", "--mpi", "--mca", "btl", "self,tcp", "--", "dlrm", "--steps", "10"])
        let afterSecond = try Self.dryRun(["-n", "2", "--", "dlrm", "--steps", "10", "--", "--mca", "btl", "self,tcp"])
        #expect(afterMPI.status == 0 && afterSecond.status == 0, "\(afterMPI.stderr)\(afterSecond.stderr)")
        #expect(afterMPI.stdout == afterSecond.stdout)
        #expect(afterMPI.stdout.contains("-x OPENBLAS_NUM_THREADS=1 --mca btl self\\,tcp /"), "\(afterMPI.stdout)")
        #expect(afterMPI.stdout.hasSuffix("mpitrain dlrm --steps 10\n"), "\(afterMPI.stdout)")
    }

    @Test func hostsVariablesMappingAndBindingGoToMpirun() throws {
        let run = try Self.dryRun(["-n", "4", "-H", "node1:2,node2:2", "-x", "MPITRAIN_TEST_A=1", "-x", "HOME",
                                   "--map-by", "node", "--bind-to", "core", "--", "selftest"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.hasPrefix("mpirun -n 4 --bind-to core "), "\(run.stdout)")
        #expect(!run.stdout.contains("--bind-to none"))
        #expect(run.stdout.contains(" --host node1:2\\,node2:2 --map-by node -x MPITRAIN_TEST_A=1 -x HOME -x OPENBLAS_NUM_THREADS=1 "),
                "\(run.stdout)")
        // A binding given to mpirun directly replaces the default one too.
        let passed = try Self.dryRun(["-n", "2", "--", "selftest", "--", "--bind-to", "socket"])
        #expect(!passed.stdout.contains("--bind-to none") && passed.stdout.contains("--bind-to socket"), "\(passed.stdout)")
    }

    /// --oversubscribe only for more ranks than cores on this machine alone.
    @Test(arguments: [
        (["--", "selftest"], true),
        (["-H", "node1:64", "--", "selftest"], false),
        (["--hostfile", "HOSTFILE", "--", "selftest"], false),
        (["--mpi", "--host", "node1:64", "--", "selftest"], false),
        (["--", "selftest", "--", "--hostfile", "HOSTFILE"], false),
    ])
    func oversubscribeOnlyOnThisMachineAlone(arguments: [String], oversubscribed: Bool) throws {
        try withTemporaryDirectory("launch-hostfile") { directory in
            let hostfile = directory.appendingPathComponent("hosts")
            try "node1 slots=64\n".write(to: hostfile, atomically: true, encoding: .utf8)
            let run = try Self.dryRun(["-n", String(Self.cores + 1)] + arguments.map { $0 == "HOSTFILE" ? hostfile.path : $0 })
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("--oversubscribe") == oversubscribed, "\(run.stdout)")
        }
    }

    /// In a Slurm job without srun: mpirun inside the allocation, starting other nodes through
    /// ssh; -n defaults to SLURM_NTASKS; stderr says which launcher and why.
    @Test func aSlurmJobWithoutSrunRunsMpirunInsideTheAllocation() throws {
        let run = try Self.dryRun(["--", "selftest"], environment: Self.slurmJob(tasks: Self.cores + 1))
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("mpirun -n \(Self.cores + 1) --bind-to none "), "\(run.stdout)")
        #expect(run.stdout.contains(" --mca plm rsh ") && !run.stdout.contains("--oversubscribe"), "\(run.stdout)")
        #expect(run.stderr == "launch: SLURM_JOB_ID=4242 is set and there is no srun on PATH: running mpirun inside the allocation; it starts other nodes through ssh (--mca plm rsh)\n")
    }

    /// In a Slurm job with srun on PATH (a fake one here): srun --mpi=pmix, the variables in
    /// --export, mpirun's placement options refused; --launcher mpirun still picks mpirun.
    @Test func aSlurmJobWithSrunRunsSrun() throws {
        try withTemporaryDirectory("launch-srun") { directory in
            let srun = directory.appendingPathComponent("srun")
            try "#!/bin/sh\nexit 1\n".write(to: srun, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: srun.path)
            var job = Self.slurmJob(tasks: 8)
            job["PATH"] = directory.path + ":" + job["PATH"]!
            let run = try Self.dryRun(["--", "selftest"], environment: job)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.hasPrefix("srun --mpi=pmix -n 8 --export=ALL\\,OPENBLAS_NUM_THREADS=1 /"), "\(run.stdout)")
            #expect(run.stdout.hasSuffix("mpitrain selftest\n"))
            #expect(run.stderr == "launch: SLURM_JOB_ID=4242 is set and srun is on PATH: running srun --mpi=pmix\n")
            let options = try Self.dryRun(["-n", "2", "--threads", "2", "-x", "MPITRAIN_TEST_A=1", "--", "selftest", "--", "--cpus-per-task=2"],
                                          environment: job)
            #expect(options.stdout.hasPrefix("srun --mpi=pmix -n 2 --export=ALL\\,OPENBLAS_NUM_THREADS=2\\,MPITRAIN_TEST_A=1 --cpus-per-task=2 /"),
                    "\(options.stdout)")
            let refused = try Self.dryRun(["-H", "node1:2", "--", "selftest"], environment: job)
            #expect(refused.status == 2)
            #expect(refused.stderr.hasPrefix("launch: run: --hostfile, -H, --map-by and --bind-to are mpirun's; srun places ranks"),
                    "\(refused.stderr)")
            let mpirun = try Self.dryRun(["--launcher", "mpirun", "--", "selftest"], environment: job)
            #expect(mpirun.stdout.hasPrefix("mpirun -n 8 ") && !mpirun.stdout.contains("plm rsh"), "\(mpirun.stdout)")
            #expect(mpirun.stderr == "launch: SLURM_JOB_ID=4242 is set and --launcher mpirun was given: running mpirun inside the allocation; it starts other nodes through srun\n")
        }
    }

    /// A real job in a (simulated) one-node Slurm allocation without srun trains exactly as the
    /// same job outside Slurm.
    @Test func aJobInASlurmAllocationTrainsAsOutsideIt() throws {
        let binary = try MPIRun.executable().path
        let dlrm = ["--", "dlrm", "--steps", "20", "--print-every", "10", "--seed", "1"]
        let inside = try MPIRun.launch(["run"] + dlrm, environment: Self.slurmJob(tasks: 2).merging(["MPITRAIN_BIN": binary]) { $1 })
        let outside = try MPIRun.launch(["run", "-n", "2"] + dlrm, environment: ["MPITRAIN_BIN": binary])
        #expect(inside.status == 0 && outside.status == 0, "\(inside.stderr)\(outside.stderr)")
        let losses = { (run: MPIRun.Outcome) in run.lines(startingWith: "step").map { $0.split(separator: " ").prefix(4).joined(separator: " ") } }
        #expect(losses(inside).count == 2)
        #expect(losses(inside) == losses(outside), "\(inside.stdout)")
    }

    @Test(arguments: [
        (["run", "-n", "0", "--", "selftest"], "-n must be a whole number of ranks in 1...65536 (got '0')"),
        (["run", "-n", "4294967298", "--", "selftest"], "-n must be a whole number of ranks in 1...65536 (got '4294967298')"),
        (["run", "-n", "two", "--", "selftest"], "-n must be a whole number of ranks in 1...65536 (got 'two')"),
        (["run", "-n", "2", "--hostfile", "/dev/null", "--", "selftest"], "hostfile '/dev/null' names no host"),
        (["run", "--", "selftest"], "-n N is required"),
        (["run", "-n", "2", "--hostfile", "/no/such/hostfile", "--", "selftest"], "hostfile '/no/such/hostfile' does not exist"),
        (["run", "-n", "2", "--hostfile", "--", "selftest"], "run: --hostfile needs a file"),
        (["run", "-n", "2", "--frobnicate", "--", "selftest"], "unknown option '--frobnicate'"),
        (["run", "-n", "2", "-H", "node1:2,,node2:2", "--", "selftest"], "-H takes hosts and slots as node1:2,node2:2 (got 'node1:2,,node2:2')"),
        (["run", "-n", "2", "-x", "MPITRAIN_TEST_UNSET", "--", "selftest"], "-x MPITRAIN_TEST_UNSET: MPITRAIN_TEST_UNSET is not set here (give -x MPITRAIN_TEST_UNSET=value)"),
        (["run", "-n", "2", "-x", "2BAD=1", "--", "selftest"], "-x takes VAR or VAR=value (got '2BAD=1')"),
        (["run", "-n", "2", "-x", "OPENBLAS_NUM_THREADS=4", "--", "selftest"], "set OPENBLAS_NUM_THREADS with --threads, not -x"),
        (["run", "-n", "2", "--launcher", "pbs", "--", "selftest"], "--launcher must be mpirun or srun (got 'pbs')"),
        (["run", "-n", "2", "--launcher", "srun", "--", "selftest"], "--launcher srun, but there is no srun on PATH"),
        (["run", "-n", "2", "--mpi", "--mca", "btl", "self"], "--mpi takes mpirun's words up to a '--'"),
        (["install"], "install: give one PREFIX (usage: ./launch install PREFIX)"),
        (["install", "/dev/null/prefix"], "install: cannot write to PREFIX '/dev/null/prefix': Not a directory"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ])
    func badInputGivesOneLineAndNonZeroExit(arguments: [String], message: String) throws {
        let run = try MPIRun.launch(arguments, environment: ["PATH": Self.pathWithoutSrun])
        #expect(run.status == 2)
        #expect(run.stderr.split(separator: "\n").last?.contains(message) == true, "\(run.stderr)")
        #expect(arguments == ["frobnicate"] || run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    }

    /// `install` with a built binary copies it and every shipped resource, unchanged, and the
    /// installed binary reads the resources there.
    @Test func installCopiesTheBinaryAndTheResources() throws {
        let binary = try MPIRun.executable()
        try withTemporaryDirectory("launch-install") { directory in
            let prefix = directory.appendingPathComponent("prefix")
            let run = try MPIRun.launch(["install", prefix.path], environment: ["MPITRAIN_BIN": binary.path])
            #expect(run.status == 0, "\(run.stderr)")
            let installed = prefix.appendingPathComponent("bin/mpitrain")
            #expect(FileManager.default.isExecutableFile(atPath: installed.path))
            #expect(FileManager.default.contentsEqual(atPath: installed.path, andPath: binary.path))
            let resources = MPIRun.repositoryRoot.appendingPathComponent("Sources/Sharding/Resources")
            let shipped = try FileManager.default.contentsOfDirectory(atPath: resources.path).sorted()
            let share = prefix.appendingPathComponent("share/mpitrain")
            #expect(!shipped.isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: share.path).sorted() == shipped)
            for file in shipped {
                #expect(FileManager.default.contentsEqual(atPath: share.appendingPathComponent(file).path,
                                                          andPath: resources.appendingPathComponent(file).path), "\(file)")
            }
            #expect(run.stdout == "launch: installed \(prefix.path)/bin/mpitrain and \(shipped.count) files in \(prefix.path)/share/mpitrain\n")
            // The installed binary reads the prefix's copies: a damaged one is named by its path there.
            let model = share.appendingPathComponent("neuroshard-cost-model.json")
            try "{".write(to: model, atomically: true, encoding: .utf8)
            let planned = try MPIRun.run(installed, ["dlrm", "--steps", "2", "--plan-algo", "neuroshard"],
                                         environment: ["OPENBLAS_NUM_THREADS": "1", "MPITRAIN_RESOURCES": ""], timeLimit: 60)
            #expect(planned.status != 0)
            #expect(planned.stderr.contains("\(model.path): not a cost model"), "\(planned.stderr)")
        }
    }

    /// A node with mpirun and a binary but no dpkg, apt-get or Swift: the job still runs.
    /// Without mpirun, `run` says so.
    @Test func aRunNeedsOnlyMpirunAndTheBinary() throws {
        try withTemporaryDirectory("launch-node") { directory in
            let binary = try MPIRun.executable().path
            let bin = try Self.commands(Self.runCommands, in: directory)
            let run = try MPIRun.launch(["run", "-n", "2", "--", "selftest", "allreduce"], environment: ["PATH": bin.path, "MPITRAIN_BIN": binary])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.lines(startingWith: "ok allreduce rank ").count == 2, "\(run.stdout)")
            let bare = try Self.commands(Self.runCommands.filter { $0 != "mpirun" }, in: directory.appendingPathComponent("bare"))
            let refused = try MPIRun.launch(["run", "-n", "2", "--", "selftest"], environment: ["PATH": bare.path, "MPITRAIN_BIN": binary])
            #expect(refused.status == 2)
            #expect(refused.stderr == "launch: run: no mpirun on PATH (OpenMPI's openmpi-bin package has it)\n")
        }
    }

    /// Started as one of two by another MPI's launcher (PMI_SIZE is what MPICH's sets), this
    /// build's MPI sees a world of one: the process says so and fails instead of training alone.
    @Test func aLauncherOfAnotherMPIIsRefused() throws {
        let run = try MPIRun.run(try MPIRun.executable(), ["selftest", "allreduce"],
                                 environment: ["PMI_SIZE": "2", "PMI_RANK": "1", "OPENBLAS_NUM_THREADS": "1"], timeLimit: 30)
        #expect(run.status != 0)
        #expect(run.stderr.contains("the launcher started 2 processes but MPI sees 1; this mpitrain was built against another MPI than the launcher's"),
                "\(run.stderr)")
        #expect(!run.stdout.contains("ok allreduce"), "\(run.stdout)")
    }

    /// Without MPITRAIN_BIN or a clone to build in, `run` takes mpitrain from PATH, and names
    /// every place it looked when there is none.
    @Test func withoutAClonesBuildRunTakesMpitrainFromPath() throws {
        try withTemporaryDirectory("launch-copy") { directory in
            let launch = directory.appendingPathComponent("launch")
            try FileManager.default.copyItem(at: MPIRun.repositoryRoot.appendingPathComponent("launch"), to: launch)
            let bare = try Self.commands(Self.runCommands, in: directory.appendingPathComponent("bare"))
            let none = try MPIRun.run(launch, ["run", "-n", "2", "--", "selftest"], environment: ["PATH": bare.path, "MPITRAIN_BIN": ""],
                                     timeLimit: 30)
            #expect(none.status == 2)
            #expect(none.stderr == "launch: run: no mpitrain to run: MPITRAIN_BIN is not set, \(directory.path)/.build/release/mpitrain does not exist and cannot be built here (no Package.swift beside launch), and there is no mpitrain on PATH\n")
            let installed = try Self.commands(Self.runCommands, extra: ["mpitrain": try MPIRun.executable().path],
                                              in: directory.appendingPathComponent("installed"))
            let path = ["PATH": installed.path, "MPITRAIN_BIN": ""]
            let dry = try MPIRun.run(launch, ["run", "-n", "2", "--dry-run", "--", "selftest"], environment: path, timeLimit: 30)
            #expect(dry.stdout.hasSuffix(" \(installed.path)/mpitrain selftest\n"), "\(dry.stdout)\(dry.stderr)")
            let real = try MPIRun.run(launch, ["run", "-n", "2", "--", "selftest", "allreduce"], environment: path, timeLimit: 60)
            #expect(real.status == 0, "\(real.stderr)")
            #expect(real.lines(startingWith: "ok allreduce rank ").count == 2, "\(real.stdout)")
        }
    }

    /// The first line of `mpitrain --version`, which names the vector extensions the build uses.
    static let versionLine = (try? MPIRun.mpitrain(["--version"]))?.stdout.split(separator: "\n").first.map(String.init) ?? ""
    /// QEMU's user-mode emulator, which runs the binary on an older CPU model.
    static let qemu = ["/usr/bin/qemu-x86_64", "/usr/local/bin/qemu-x86_64"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A binary compiled for AVX2 (`launch` builds for the machine's CPU family) started on a CPU
    /// without it, here an emulated Nehalem: one line that says what to do, status 1, not an
    /// illegal instruction.
    @Test(.enabled(if: qemu != nil && !versionLine.hasSuffix("build for SSE2"),
                   "needs qemu-x86_64 (./launch test installs qemu-user on x86-64) and a build for more than SSE2; absent here"))
    func aBuildForANewerCPUSaysSoOnAnOlderOne() throws {
        let run = try MPIRun.run(URL(fileURLWithPath: Self.qemu!), ["-cpu", "Nehalem", try MPIRun.executable().path, "--version"],
                                 environment: [:], timeLimit: 60)
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.hasPrefix("mpitrain: error: this mpitrain was compiled for ") && run.stderr.contains(", which this CPU lacks; "),
                "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        #expect(run.stdout.isEmpty, "\(run.stdout)")
    }
}
