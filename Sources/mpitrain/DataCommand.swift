import ArgumentParser
import Foundation
import Models
import Synchronization

/// `mpitrain data ...`: training data made ready ahead of a job.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare training data: Criteo TSV into a memory-mapped binary format.",
        subcommands: [Preprocess.self])

    struct Preprocess: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write Criteo TSV (plain, gzip, many files or standard input) as a preprocessed directory for `dlrm --data criteo-bin`.")

        @Option(parsing: .upToNextOption, help: "Files, globs ('day_*.gz', in natural order) or - (standard input), in the Criteo TSV layout.")
        var dataPath: [String]

        @Option(help: "The directory to write (created; refused if it holds data, unless --overwrite).")
        var out: String

        @Option(help: "Rows to hash every categorical into: one number, or 26 joined by '-' (the reference's --arch-embedding-size).")
        var archEmbeddingSize = "100000"

        @Option(help: "Instead of hashing: values seen at least N times get their own row, the rest share row 0 (as MLPerf's frequency threshold); 0: hash.")
        var minFrequency = 0

        @Option(help: "Fail on a malformed row, or skip it with a warning.")
        var onBadRow: BadRowPolicy = .fail

        @Flag(help: "Replace a dataset already at --out (only once the new one is complete).")
        var overwrite = false

        func validate() throws {
            guard minFrequency >= 0 else { throw ValidationError("--min-frequency must be at least 0") }
            if minFrequency > 0 && archEmbeddingSize != "100000" {
                throw ValidationError("--min-frequency gives every table its own rows; drop --arch-embedding-size")
            }
        }

        func run() throws {
            _ = configureThreads(1)  // no BLAS here: its threads must not spin beside the reading
            let sizes = try DLRMConfig.parseSizes(archEmbeddingSize, name: "--arch-embedding-size")
            let rows = sizes.count == 1 ? [Int](repeating: sizes[0], count: CriteoTSVReader.categoricalFeatures) : sizes
            guard rows.count == CriteoTSVReader.categoricalFeatures, rows.allSatisfy({ 1...Int(Int32.max) ~= $0 }) else {
                throw ValidationError("--arch-embedding-size must give 1 or 26 sizes in 1...\(Int32.max), found \(rows.count)")
            }
            var preprocessor = CriteoPreprocessor(inputs: try DataInputs(dataPath), out: out,
                                                  categoricals: minFrequency > 0 ? .frequency(minCount: minFrequency) : .hashed,
                                                  tableRows: rows, onBadRow: onBadRow)
            preprocessor.overwrite = overwrite
            let start = ContinuousClock.now
            let warnings = SkipWarnings()
            var lastReport = start
            let header = try preprocessor.run(onSkip: { warnings.report($0) }) { samples in
                let now = ContinuousClock.now
                guard (now - lastReport).seconds >= 5 else { return }
                lastReport = now
                print(String(format: "%d samples, %.0f per second", samples, Double(samples) / (now - start).seconds))
                fflush(nil)
            }
            let seconds = (ContinuousClock.now - start).seconds
            let tableRows = Set(header.tableRows).count == 1 ? "\(header.tableRows[0])" : "\(header.tableRows.min()!)-\(header.tableRows.max()!)"
            print(String(format: "wrote %@: %d samples (%.0f per second, %.1f s), %@ rows per table", out, header.samples,
                         Double(header.samples) / max(seconds, 1e-9), seconds, tableRows)
                  + (header.skippedRows > 0 ? "; \(header.skippedRows) bad rows skipped" : ""))
            print("train on it with: mpitrain dlrm --data criteo-bin --data-path \(out)")
        }
    }
}

/// Prints the first ten malformed rows skipped, from whichever thread reads them.
final class SkipWarnings: Sendable {
    private let count = Mutex(0)

    func report(_ error: DatasetError) {
        let n = count.withLock { n in
            n += 1
            return n
        }
        if n <= 10 { FileHandle.standardError.write(Data("mpitrain: warning: skipped \(error)\n".utf8)) }
    }
}
