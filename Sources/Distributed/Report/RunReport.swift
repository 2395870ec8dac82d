import Foundation
import Models

/// The charts of one run, from its metrics file and optionally its trace, and an index page
/// that shows them all: what `mpitrain report` writes. Everything is read and drawn before
/// anything is written, so bad input leaves a previous report as it was.
public struct RunReport: Sendable {
    public struct Chart: Sendable {
        /// Its file name in the report directory.
        public let file: String
        /// What it shows, under it on the index page.
        public let caption: String
        public let svg: String
    }

    /// The command and ranks, e.g. "mpitrain dlrm on 2 ranks".
    public let title: String
    /// The run's key options, e.g. "--steps 1000 --batch-size 512".
    public let keyOptions: String
    public let charts: [Chart]
    private let config: MetricsLog.Config?
    /// Where the charts come from, for the index page.
    private let sources: String

    /// Steps (or epochs) the schedule shows: a few, so that every phase stays readable.
    static let scheduleSteps = 3

    /// Reads the metrics file at `metricsPath` (and the trace at `tracePath`) and draws their charts.
    public init(metrics metricsPath: String, trace tracePath: String? = nil) throws(ConfigError) {
        let metrics = try MetricsLog(path: metricsPath)
        guard !metrics.train.isEmpty || !metrics.eval.isEmpty || !metrics.epochs.isEmpty else {
            throw ConfigError("\(metricsPath): no train, eval or epoch records to chart")
        }
        let trace = try tracePath.map { path throws(ConfigError) in try TraceLog(path: path) }
        var charts = Self.stepCharts(metrics) + Self.epochCharts(metrics.epochs)
        if let trace, let tracePath {
            guard let schedule = Self.schedule(trace) else { throw ConfigError("\(tracePath): no timed phases (\"ph\": \"X\") to chart") }
            charts.append(schedule)
        }
        self.charts = charts
        config = metrics.config
        let command = metrics.config?.command ?? (metrics.epochs.isEmpty ? "dlrm" : "gnn")
        let ranks = metrics.config?.ranks ?? metrics.train.map(\.ranks.count).max().flatMap { $0 > 0 ? $0 : nil }
            ?? trace.map { Set($0.phases.map(\.rank)).count }
        title = "mpitrain \(command)" + (ranks.map { " on \($0) rank\($0 == 1 ? "" : "s")" } ?? "")
        keyOptions = Self.keyOptions(metrics.config?.options ?? [])
        sources = "From \(metricsPath)" + (metrics.timeSpan.map { " (records from \($0.first) to \($0.last))" } ?? "")
            + (tracePath.map { " and \($0)" } ?? "") + "."
    }

    /// Writes every chart and then `index.html` into `directory`, created if absent; returns the paths written.
    public func write(to directory: String) throws(ConfigError) -> [String] {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ConfigError("\(directory): cannot create the report directory (\(error.localizedDescription))")
        }
        var written: [String] = []
        for (file, text) in charts.map({ ($0.file, $0.svg) }) + [("index.html", indexHTML)] {
            let path = (directory as NSString).appendingPathComponent(file)
            try JSONFile.writeAtomically(Data(text.utf8), to: path)
            written.append(path)
        }
        return written
    }

    /// A page with the title, every chart with its caption, and the run's options and plan.
    public var indexHTML: String {
        let e = SVGCanvas.escape
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(e(title))</title>
            <style>body{font-family:sans-serif;margin:2em;max-width:800px}figure{margin:2em 0}figcaption{color:#444}td{padding-right:1em}</style>
            </head><body>
            <h1>\(e(title))</h1>

            """
        if !keyOptions.isEmpty { html += "<p><code>\(e(keyOptions))</code></p>\n" }
        if let arguments = config?.arguments {
            html += "<p>Command line: <code>mpitrain \(e(arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")))</code>"
                + (config?.version.map { "; build \(e($0))" } ?? "") + ".</p>\n"
        }
        html += "<p>\(e(sources)) Hover over a point or bar for its values.</p>\n"
        for chart in charts {
            html += "<figure><object type=\"image/svg+xml\" data=\"\(e(chart.file))\">\(e(chart.file))</object>"
                + "<figcaption>\(e(chart.caption)) (<a href=\"\(e(chart.file))\">\(e(chart.file))</a>)</figcaption></figure>\n"
        }
        if let options = config?.options, !options.isEmpty {
            html += "<details><summary>Options</summary><table>\n"
                + options.map { "<tr><td><code>\(e($0.name))</code></td><td><code>\(e($0.value))</code></td></tr>\n" }.joined() + "</table></details>\n"
        }
        if let plan = config?.plan { html += "<details><summary>Plan</summary><pre>\(e(plan))</pre></details>\n" }
        return html + "</body></html>\n"
    }

    /// `mpitrain dlrm`'s charts: loss, AUC and throughput against the step, phase times per
    /// rank, and the plan's predicted against measured costs when the config record carries a prediction.
    static func stepCharts(_ log: MetricsLog) -> [Chart] {
        func point(_ step: Int, _ value: Double?) -> (x: Double, y: Double)? { value.map { (Double(step), $0) } }
        var charts: [Chart?] = [
            LineChart(title: "Loss", xLabel: "step", yLabel: "binary cross-entropy", series: [
                .init("train", log.train.compactMap { point($0.step, $0.loss) }),
                .init("held-out", log.eval.compactMap { point($0.step, $0.metrics.loss) }),
            ]).map { Chart(file: "loss.svg", caption: "Training loss (the mean over each report's steps) and held-out loss at each evaluation.", svg: $0.svg) },
            LineChart(title: "Held-out AUC", xLabel: "step", yLabel: "ROC AUC", series: [
                .init("held-out", log.eval.compactMap { point($0.step, $0.metrics.auc) }),
            ]).map { Chart(file: "auc.svg", caption: "Held-out ROC AUC at each evaluation.", svg: $0.svg) },
            LineChart(title: "Training throughput", xLabel: "step", yLabel: "samples/s", series: [
                .init("samples/s", log.train.compactMap { point($0.step, $0.samplesPerSecond) }),
            ]).map { Chart(file: "throughput.svg", caption: "Samples per second trained from the run's first step to each report (a running average).", svg: $0.svg) },
        ]
        let reports = log.train.filter { !$0.ranks.isEmpty }
        let ranks = 0..<(reports.map(\.ranks.count).max() ?? 0)
        /// Rank `rank`'s mean of `value` over the reports.
        func mean(_ rank: Int, _ value: KeyPath<RankPhases, Double>) -> Double {
            let values = reports.compactMap { rank < $0.ranks.count ? $0.ranks[rank][keyPath: value] : nil }
            return values.reduce(0, +) / Double(values.count)
        }
        let phases: [(String, KeyPath<RankPhases, Double>)] = [("embedding", \.embeddingMilliseconds), ("communication", \.communicationMilliseconds),
                                                                ("dense", \.denseMilliseconds), ("data", \.dataMilliseconds)]
        charts.append(SpanChart.stacked(
            title: "Time per step by phase (mean of \(reports.count) reports)", xLabel: "milliseconds per step", unit: "ms",
            bars: ranks.map { rank in ("rank \(rank)", phases.map { ($0, mean(rank, $1)) }) }
        ).map { Chart(file: "phases.svg", caption: "Each rank's wall time per step by phase: embedding lookups and updates, communication waits, "
                      + "the dense MLPs, and waiting for data; the mean over every report, with the step time at the bar's end.", svg: $0.svg) })
        if let predicted = log.config?.predicted, predicted.count == ranks.count {
            charts.append(SpanChart.stacked(
                title: "Predicted and measured embedding cost per step", xLabel: "milliseconds per step", unit: "ms",
                bars: predicted.indices.flatMap { rank in [
                    ("rank \(rank) predicted", [("embedding", predicted[rank].forward + predicted[rank].backward), ("communication", predicted[rank].communication)]),
                    ("rank \(rank) measured", [("embedding", mean(rank, \.embeddingMilliseconds)), ("communication", mean(rank, \.communicationMilliseconds))]),
                ] }
            ).map { Chart(file: "predicted.svg", caption: "The predicted embedding and communication time per step of each rank under the plan "
                          + "the run started with, beside the measured times (the mean over every report).", svg: $0.svg) })
        }
        return charts.compactMap { $0 }
    }

    /// `mpitrain gnn`'s charts: accuracy and loss per epoch.
    static func epochCharts(_ epochs: [GNNEpochReport]) -> [Chart] {
        func series(_ name: String, _ value: (GNNEpochReport) -> Double) -> LineChart.Series {
            .init(name, epochs.map { (Double($0.epoch), value($0)) })
        }
        return [
            LineChart(title: "Accuracy", xLabel: "epoch", yLabel: "accuracy",
                      series: [series("train", \.trainAccuracy), series("validation", \.validationAccuracy), series("test", \.testAccuracy)])
                .map { Chart(file: "epoch-accuracy.svg", caption: "Training, validation and test accuracy after each epoch.", svg: $0.svg) },
            LineChart(title: "Training loss", xLabel: "epoch", yLabel: "cross-entropy", series: [series("train", \.loss)])
                .map { Chart(file: "epoch-loss.svg", caption: "Training loss of each epoch.", svg: $0.svg) },
        ].compactMap { $0 }
    }

    /// The trace's phases per rank over a typical stretch of a few steps or epochs; nil
    /// when it has no phase of any length.
    static func schedule(_ trace: TraceLog) -> Chart? {
        let window = trace.typicalWindow(scheduleSteps)
        let rows = Set(trace.phases.map(\.rank)).sorted().map { rank in
            let label = trace.rankNames[rank] ?? "rank \(rank)"
            let spans = trace.phases.filter { $0.rank == rank && $0.start < window.end && $0.start + $0.duration > window.start }.map { phase in
                let start = max(phase.start, window.start), end = min(phase.start + phase.duration, window.end)
                let place = [phase.category, phase.step.map { "\(trace.stepName ?? "step") \($0)" }, phase.layer.map { "layer \($0)" },
                             phase.chunk.map { "chunk \($0)" }].compactMap { $0 }.map { ", " + $0 }.joined()
                return SpanChart.Span(start: (start - window.start) / 1000, length: (end - start) / 1000, category: phaseKind(phase.name),
                                      tooltip: "\(label): \(phase.name)\(place), "
                                          + String(format: "%.3f ms from %.3f ms", phase.duration / 1000, (phase.start - window.start) / 1000))
            }
            return SpanChart.Row(label: label, spans: spans, note: nil)
        }
        return SpanChart(title: "Phases per rank over \(window.description)", xLabel: "milliseconds from the window's start", rows: rows).map { chart in
            Chart(file: "schedule.svg", caption: "What each rank ran over \(window.description), on the trace's clock: a stretch as long as "
                     + "the run's typical one, nearest its middle. Gaps are time outside any traced phase; phases side by side across ranks show "
                     + "the pipeline at work.", svg: chart.svg)
        }
    }

    /// What colours a phase: its name without the numbered parts that traces of earlier builds
    /// put in it ("forward L1 chunk 2" is a "forward").
    static func phaseKind(_ name: String) -> String {
        let words = name.split(separator: " ")
        let kept = words.indices.filter { i in
            !words[i].contains(where: \.isNumber) && !(i + 1 < words.count && words[i + 1].allSatisfy(\.isNumber))
        }
        return kept.isEmpty ? name : kept.map { words[$0] }.joined(separator: " ")
    }

    /// The options that say most about a run, as flags: `--steps 1000 --batch-size 512`.
    static func keyOptions(_ options: [(name: String, value: String)]) -> String {
        let key = ["data", "dataset", "mode", "stages", "chunks", "model", "layers", "hidden", "steps", "epochs", "batchsize", "planalgo", "plan"]
        return options.compactMap { option -> (Int, String)? in
            guard let rank = key.firstIndex(of: option.name.lowercased().filter(\.isLetter)), option.value != "false" else { return nil }
            let flag = "--" + option.name.reduce("") { $0 + ($1.isUppercase ? "-" + $1.lowercased() : String($1)) }
            return (rank, option.value == "true" ? flag : "\(flag) \(option.value)")
        }.sorted { $0.0 < $1.0 }.map(\.1).joined(separator: " ")
    }
}
