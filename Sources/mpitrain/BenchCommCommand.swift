import ArgumentParser
import Distributed
import Models
import Foundation
import Sharding

/// `mpitrain bench comm`: latency and bandwidth of the collectives, OSU style.
struct BenchCommCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm",
        abstract: "Latency and bandwidth of allreduce, alltoall, alltoallv, broadcast and ping-pong, 8 B to 64 MiB.",
        discussion: "Run under mpirun for several ranks: ./launch run -n 4 -- bench comm")

    @Option(parsing: .upToNextOption, help: "Operations: \(CommunicationBenchmark.Operation.allCases.map(\.rawValue).joined(separator: ", ")).")
    var ops: [CommunicationBenchmark.Operation] = CommunicationBenchmark.Operation.allCases

    @Option(help: "Smallest message in bytes.")
    var minSize: Int = 8

    @Option(help: "Largest message in bytes.")
    var maxSize: Int = 64 << 20

    @Option(help: "Untimed iterations before each size.")
    var warmup: Int = 10

    @Option(help: "Timed iterations per size (default: 1000, fewer for large messages).")
    var iterations: Int?

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    @Flag(help: "Also make every call on plain MPI from C, timed the same way in alternating blocks, and print the communicator's latency over it.")
    var reference = false

    func validate() throws {
        guard minSize >= 1, maxSize >= minSize else { throw ValidationError("need 1 <= --min-size <= --max-size") }
        guard maxSize <= 1 << 30 else { throw ValidationError("--max-size is at most 1 GiB") }
        guard warmup >= 0, (iterations ?? 1) >= 1 else { throw ValidationError("--warmup must be >= 0 and --iterations >= 1") }
    }

    func run() throws {
        if let json { try OutputPaths.checkFile(json, "JSON file") }
        let world = try MPIRuntime.world()
        var benchmark = CommunicationBenchmark()
        benchmark.operations = ops
        benchmark.minBytes = minSize
        benchmark.maxBytes = maxSize
        benchmark.warmupIterations = warmup
        benchmark.reference = reference
        if let iterations { benchmark.iterations = { _ in iterations } }
        if world.isRoot {
            print("# mpitrain bench comm: \(world.size) rank\(world.size == 1 ? "" : "s") on \(try world.processorName())")
            print("# latency: each rank's mean over the timed iterations (ping-pong: half the round trip);")
            print("# each call timed alone, a barrier after it outside the timed region, \(warmup) warm-up calls not counted;")
            print("# avg/min/max across ranks; bandwidth = bytes / avg latency (alltoall(v): bytes each rank sends in all)")
            if reference { print("# C µs: the same calls on plain MPI from C, in blocks alternating with the communicator's; ratio = avg / C") }
        }
        var current: CommunicationBenchmark.Operation?
        let rows = try benchmark.run(on: world) { row in
            if row.operation != current {
                current = row.operation
                print("\n\(row.operation.rawValue)")
                print(pad("bytes", 10) + pad("avg µs", 12) + pad("min µs", 12) + pad("max µs", 12) + pad("MB/s", 12) + pad("iters", 7)
                      + (reference ? pad("C µs", 12) + pad("ratio", 8) : ""))
            }
            print(pad(String(row.bytes), 10) + pad(fixed(row.averageMicroseconds), 12) + pad(fixed(row.minMicroseconds), 12)
                  + pad(fixed(row.maxMicroseconds), 12) + pad(fixed(row.bandwidthMBps), 12) + pad(String(row.iterations), 7)
                  + (row.referenceMicroseconds.map { pad(fixed($0), 12) } ?? "")
                  + (row.referenceRatio.map { pad(String(format: "%.3f", $0), 8) } ?? ""))
        }
        if reference && world.isRoot { print("\n" + Self.referenceSummary(rows)) }
        let overhead = try benchmark.measureOverhead(on: world)
        let hosts = try world.gatherv(Array(try world.processorName().utf8), root: 0)
        if world.isRoot {
            print("\nswift layer overhead, 8-byte allreduce: MPI_Allreduce \(fixed(overhead.rawMicroseconds)) µs, "
                  + "Communicator.allreduce \(fixed(overhead.wrappedMicroseconds)) µs (medians)")
            if let json {
                var hardware = HardwareFingerprint.current
                let hostCount = Set((0..<world.size).map { Array(hosts![$0]) }).count
                hardware.mpiLibrary = MPIRuntime.libraryVersion
                hardware.transport = hostCount == 1 ? "shared memory" : "network, \(hostCount) hosts"
                hardware.ranksPerHost = world.size / hostCount
                let report = Report(ranks: world.size, host: try world.processorName(), rows: rows, overhead: overhead, hardware: hardware)
                try JSONFile.write(report, to: json)
                print("wrote \(json)")
            }
        }
    }

    /// Per operation, the median of the communicator's latency over plain MPI's at 4 KiB-2 MiB
    /// (or over every size measured, when none falls there).
    static func referenceSummary(_ rows: [CommunicationBenchmark.Row]) -> String {
        let operations = CommunicationBenchmark.Operation.allCases.filter { operation in rows.contains { $0.operation == operation } }
        return "communicator over plain C MPI, median ratio over sizes: " + operations.map { operation in
            let mine = rows.filter { $0.operation == operation }
            let band = mine.filter { (4096...(2 << 20)).contains($0.bytes) }
            let chosen = band.isEmpty ? mine : band
            let range = band.isEmpty ? "all sizes" : "4 KiB-2 MiB"
            return String(format: "%@ %.3f (%@)", operation.rawValue, median(chosen.compactMap(\.referenceRatio)), range)
        }.joined(separator: ", ")
    }

    struct Report: Codable {
        let ranks: Int
        let host: String
        let rows: [CommunicationBenchmark.Row]
        let overhead: CommunicationBenchmark.Overhead
        let hardware: HardwareFingerprint
    }
}

extension CommunicationBenchmark.Operation: ExpressibleByArgument {}

/// Right-aligns `text` in a column of `width` characters.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? " " + text : String(repeating: " ", count: width - text.count) + text
}

/// A number with a precision that suits its size.
func fixed(_ value: Double) -> String {
    String(format: value >= 100 ? "%.1f" : value >= 1 ? "%.2f" : "%.3f", value)
}
