import Foundation
import Models

/// Starts `mpitrain` as an MPI job of its own and waits for it: how a single-process command
/// (`plan eval --train`, `costs calibrate`) measures something only several ranks can.
public struct JobLauncher: Sendable {
    /// How the job is started.
    public enum Launcher: Sendable {
        /// `launch run -n {ranks} --` of the clone at this path, running `MPITRAIN_BIN`.
        case launch(String)
        /// Words before the executable, `{ranks}` standing for the rank count.
        case words([String])
    }

    /// The `mpitrain` to launch.
    public var executable: String
    public var launcher: Launcher
    /// Hosts for the ranks (a hostfile, as `launch run --hostfile` and mpirun take it).
    public var hostfile: String?

    /// Launches `executable` through `launcher`; by default through `launch run -n {ranks} --`
    /// of the clone the executable was built in, which knows the `mpirun` flags this machine
    /// needs (oversubscription, root, no remote agent), else plain `mpirun -n {ranks}`.
    public init(executable: String, launcher: Launcher? = nil, hostfile: String? = nil) {
        self.executable = executable
        self.launcher = launcher ?? Self.clone(of: executable).map { .launch($0.appendingPathComponent("launch").path) }
            ?? .words(["mpirun", "-n", "{ranks}"])
        self.hostfile = hostfile
    }

    /// The path of the running executable, links resolved.
    public static var thisExecutable: String { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path }

    /// Runs `mpitrain arguments` on `ranks` ranks, its output discarded.
    /// - Throws: `ConfigError` naming `what` failed, with the job's last error line.
    public func run(_ arguments: [String], ranks: Int, what: String) throws {
        let hosts = hostfile.map { ["--hostfile", $0] } ?? []
        let start = switch launcher {
        case .launch(let launch): [launch, "run", "-n", "\(ranks)"] + hosts + ["--"]
        case .words(let words): words.map { $0.replacingOccurrences(of: "{ranks}", with: "\(ranks)") } + hosts + [executable]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = start + arguments
        // `launch run` runs this executable rather than building its own.
        process.environment = ProcessInfo.processInfo.environment.merging(["MPITRAIN_BIN": executable]) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ConfigError("\(what) on \(ranks) ranks failed (status \(process.terminationStatus)): \(Self.cause(stderr))")
        }
    }

    /// The line of a failed job's standard error that says why: its last line, or, when it
    /// ends with one of mpirun's banners (a block between rules of dashes), the block's first.
    static func cause(_ stderr: String) -> String {
        let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let isRule = { (line: String) in line.count >= 20 && line.allSatisfy { $0 == "-" } }
        guard let last = lines.last else { return "no message" }
        guard isRule(last), let opening = lines.dropLast().lastIndex(where: isRule), opening + 1 < lines.count - 1 else { return last }
        return lines[opening + 1]
    }

    /// The clone holding `executable` under its `.build`: the nearest ancestor with an
    /// executable `launch` beside `Package.swift`.
    static func clone(of executable: String) -> URL? {
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<5 {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("launch").path),
               FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                return directory
            }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
