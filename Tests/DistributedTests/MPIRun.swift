import Foundation
import Testing

/// Runs the built `mpitrain` on N ranks through `./launch run` (N = 1: directly, as an MPI
/// singleton) and collects what it printed, ending the whole job if it outlives a time limit.
struct MPIRun {
    struct Outcome {
        let status: Int32
        let stdout: String
        let stderr: String
        let seconds: Double
        /// Seconds from the fault to the job's end, when one was injected.
        var secondsAfterFault: Double?

        /// Lines of standard output that start with `prefix`.
        func lines(startingWith prefix: String) -> [Substring] {
            stdout.split(separator: "\n").filter { $0.hasPrefix(prefix) }
        }
    }

    /// The repository root, found from this file's path.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `mpitrain` built beside this test bundle, or `MPITRAIN_BIN`.
    static func executable() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["MPITRAIN_BIN"] {
            return URL(fileURLWithPath: override)
        }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // Inside an .xctest bundle on some platforms: walk up to the build directory.
        while directory.path.contains(".xctest") { directory.deleteLastPathComponent() }
        let candidate = directory.appendingPathComponent("mpitrain")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw HarnessError("no mpitrain executable at \(candidate.path); build it first (./launch build, or swift build)")
        }
        return candidate
    }

    /// What a test does to a running job once its standard output satisfies `when`: sends
    /// `signal` to rank `rank`'s process (to every rank when nil).
    struct Fault {
        var when: (String) -> Bool
        var signal: Int32 = SIGKILL
        var rank: Int?
    }

    /// Runs `mpitrain arguments` on `ranks` ranks and waits at most `timeLimit` seconds,
    /// injecting `fault` on the way if given; `input` is a file to read as standard input.
    static func mpitrain(_ arguments: [String], ranks: Int = 1, timeLimit: Double = 120, fault: Fault? = nil, input: String? = nil) throws -> Outcome {
        let binary = try executable()
        if ranks == 1 {
            // As `launch run` does for every rank: results must not depend on BLAS threading.
            return try run(binary, arguments, environment: ["OPENBLAS_NUM_THREADS": "1"], timeLimit: timeLimit, fault: fault, input: input)
        }
        let launch = repositoryRoot.appendingPathComponent("launch")
        return try run(launch, ["run", "-n", String(ranks), "--"] + arguments,
                       environment: ["MPITRAIN_BIN": binary.path], timeLimit: timeLimit, fault: fault)
    }

    /// Runs `./launch arguments` as a user would.
    static func launch(_ arguments: [String], environment: [String: String] = [:], timeLimit: Double = 60) throws -> Outcome {
        try run(repositoryRoot.appendingPathComponent("launch"), arguments, environment: environment, timeLimit: timeLimit)
    }

    static func run(_ executable: URL, _ arguments: [String], environment: [String: String], timeLimit: Double,
                    fault: Fault? = nil, input: String? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        // MPI started in this process (`DLRMJobTests`' one-rank world) leaves its runtime's
        // variables here; a child inheriting them would take itself for a rank of this process's job.
        let inherited = ProcessInfo.processInfo.environment.filter { key, _ in !["OMPI_", "PMIX_", "ORTE_"].contains { key.hasPrefix($0) } }
        process.environment = inherited.merging(environment) { $1 }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mpitrain-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout"), err = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = try input.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        var faulted: Date?
        if let fault {
            while finished.wait(timeout: .now() + 0.02) == .timedOut && Date().timeIntervalSince(start) < timeLimit {
                if fault.when((try? String(contentsOf: out, encoding: .utf8)) ?? "") {
                    let targets = ranks(under: process.processIdentifier).filter { fault.rank == nil || fault.rank == $0.rank }
                    // A fault at start-up waits for its rank's process to exist.
                    guard !targets.isEmpty else { continue }
                    for target in targets { kill(target.pid, fault.signal) }
                    faulted = Date()
                    break
                }
            }
        }
        if finished.wait(timeout: .now() + max(0, timeLimit - Date().timeIntervalSince(start))) == .timedOut {
            // The ranks first, so that none outlives the job, then mpirun.
            for (_, pid) in ranks(under: process.processIdentifier) { kill(pid, SIGKILL) }
            process.terminate()
            if finished.wait(timeout: .now() + 5) == .timedOut { kill(process.processIdentifier, SIGKILL) }
            throw HarnessError("mpitrain \(arguments.joined(separator: " ")) did not finish within \(Int(timeLimit)) s")
        }
        return Outcome(status: process.terminationStatus,
                       stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "",
                       seconds: Date().timeIntervalSince(start), secondsAfterFault: faulted.map { Date().timeIntervalSince($0) })
    }
}

/// The `mpitrain` processes descended from `root` (the ranks under launch and mpirun) by
/// their rank (from the launcher's environment; the process itself when alone), from /proc.
func ranks(under root: Int32) -> [(rank: Int, pid: Int32)] {
    var parents: [Int32: Int32] = [:], names: [Int32: String] = [:]
    for pid in ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap({ Int32($0) }) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
        // Fields after the command name: state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, let parent = Int32(fields[1]) else { continue }
        parents[pid] = parent
        names[pid] = String(stat[stat.index(after: open)..<close])
    }
    func descends(_ pid: Int32) -> Bool {
        var current = pid
        while let parent = parents[current], parent > 1 {
            if parent == root { return true }
            current = parent
        }
        return false
    }
    func rank(_ pid: Int32) -> Int {
        let environment = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
        let entry = environment.split(separator: 0).lazy.map { String(decoding: $0, as: UTF8.self) }
            .first { $0.hasPrefix("OMPI_COMM_WORLD_RANK=") }
        return entry.flatMap { Int($0.dropFirst("OMPI_COMM_WORLD_RANK=".count)) } ?? 0
    }
    let pids = names[root] == "mpitrain" ? [root] : parents.keys.filter { names[$0] == "mpitrain" && descends($0) }
    return pids.map { (rank($0), $0) }.sorted { $0.rank < $1.rank }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
