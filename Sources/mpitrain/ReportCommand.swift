import ArgumentParser
import Distributed

/// `mpitrain report`: charts of a run's metrics (and trace) as SVG files and an index page.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Chart a run's --metrics file (and --trace) as SVG files with an index.html that shows them.")

    @Argument(help: "The --metrics file of an `mpitrain dlrm` or `gnn` run.")
    var metrics: String

    @Option(help: "Directory to write the charts and index.html into (created if absent; files of the same names are replaced).")
    var out: String

    @Option(help: "The --trace file of the same run: adds a chart of each rank's phases over a few steps or epochs.")
    var trace: String?

    func run() throws {
        try OutputPaths.checkDirectory(out, "report directory")
        let report = try RunReport(metrics: metrics, trace: trace)
        for path in try report.write(to: out) { print("wrote \(path)") }
    }
}
