import ArgumentParser
import Foundation
import Models

/// `mpitrain bench data`: Criteo reading throughput per core in each form.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Criteo lines per second on one core: plain TSV, gzip TSV and the preprocessed binary format, per rank.",
        discussion: "The lines of a Criteo TSV file (by default the shared sample beside the clone) are repeated to --lines, "
            + "written as plain TSV, gzip (zlib level 6) and preprocessed binary, then read in batches of 4096 by one rank "
            + "of each count in --ranks. Rates are lines of the whole stream per second of the reading thread's CPU time: "
            + "a rank of N scans every line but parses only its 1/N, so its rate is what it keeps up with.")

    @Option(help: "A Criteo TSV file whose lines are repeated (default: ../shared/datasets/criteo-sample beside the clone).")
    var dataPath: String?

    @Option(help: "Lines of the benchmark input.")
    var lines = 2_000_000

    @Option(help: "Rank counts, e.g. 1,2,4: each is measured as its rank 0.")
    var ranks = "1,2,4"

    @Option(help: "Timed runs per row; the median is reported.")
    var runs = 3

    @Option(help: "Write the inputs here and keep them (default: a temporary directory, removed after).")
    var keep: String?

    @Option(help: "Also write the rows as JSON to this file.")
    var json: String?

    func validate() throws {
        guard (1000...1_000_000_000).contains(lines) else { throw ValidationError("--lines must be in 1000...1000000000, found \(lines)") }
        guard (1...100).contains(runs) else { throw ValidationError("--runs must be in 1...100, found \(runs)") }
    }

    func run() throws {
        let rankCounts = try DLRMConfig.parseSizes(ranks, separator: ",", name: "--ranks")
        guard rankCounts.allSatisfy({ (1...4096).contains($0) }) else { throw ValidationError("--ranks must be counts in 1...4096") }
        guard let sample = dataPath ?? SharedDatasets.directory("criteo-sample").map({ $0 + "/criteo-sample.tsv" }) else {
            throw CommandError("no --data-path, and no ../shared/datasets/criteo-sample beside the clone")
        }
        if let json { try OutputPaths.checkFile(json, "JSON file") }
        let directory = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("mpitrain-bench-data-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: directory) } }
        print("# mpitrain bench data: \(lines) lines repeated from \(sample); median of \(runs) runs; CPU time of the reading thread")
        let files = try DataBenchmark.prepare(sample: sample, lines: lines, directory: directory)
        print(String(format: "# data preprocess from gzip: %.0f lines/s (wall)", files.preprocessLinesPerSecond))
        var benchmark = DataBenchmark()
        benchmark.runs = runs
        print([pad("input", 9), pad("ranks", 6), pad("lines/s", 11), pad("MB/s", 7), pad("bytes/line", 11), pad("spread", 7)].joined(separator: " "))
        let rows = try benchmark.run(files, ranks: rankCounts)
        for row in rows {
            print([pad(row.input, 9), pad(String(row.ranks), 6), pad(String(Int(row.linesPerSecond.rounded())), 11),
                   pad(String(Int((row.linesPerSecond * row.bytesPerLine / 1e6).rounded())), 7), pad(fixed(row.bytesPerLine), 11),
                   pad(String(format: "%.0f%%", 100 * row.spread), 7)].joined(separator: " "))
        }
        if let json { try JSONFile.write(rows, to: json) }
    }
}
