import Distributed
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Models
import TestSupport
import Testing

/// `mpitrain report`: metrics and traces written by hand, charted through the library, and
/// the charts read back as XML to find the recorded numbers in them.
@Suite struct ReportTests {
    /// A two-rank dlrm run as `--metrics` writes it, with a config record, a sketch and a kind
    /// and a field of a later build, which the report passes over.
    static let dlrmMetrics = """
        {"arguments":["dlrm","--steps","200","--data-path","a.tsv","b b.tsv"],"command":"dlrm","kind":"config","options":{"batch-size":512,"data-path":["a.tsv","b b.tsv"],"plan":null,"random-pooling":false,"seed":0,"steps":200},"plan":{"tables":[{"rank":1,"table":"t0"}]},"predicted":{"ranks":[\(cost(0.05, 0.04, 0.02)),\(cost(0.06, 0.05, 0.03))]},"predictedBy":"neuroshard","ranks":2,"time":"2026-12-07T07:00:00.000Z","version":"abc1234"}
        {"kind":"train","learningRate":0.2,"loss":0.63,"ranks":[\(phases(0.05, 0.17, 0.33, 0.20)),\(phases(0.06, 0.25, 0.31, 0.21))],"samplesPerSecond":820000.5,"step":100,"time":"2026-12-07T07:00:01.000Z"}
        {"kind":"eval","metrics":{"accuracy":0.77,"auc":0.832,"count":16384,"loss":0.486,"normalizedEntropy":0.73},"step":100,"time":"2026-12-07T07:00:01.100Z"}
        {"kind":"sketch","step":100,"healthy":true,"time":"2026-12-07T07:00:01.200Z"}
        {"kind":"checkpoint","path":"step-100","time":"2026-12-07T07:00:01.300Z"}

        {"kind":"train","learningRate":0.2,"loss":0.52,"newField":{"x":[1,2]},"ranks":[\(phases(0.07, 0.19, 0.35, 0.22)),\(phases(0.08, 0.27, 0.33, 0.23))],"samplesPerSecond":790000.25,"step":200,"time":"2026-12-07T07:00:02.000Z"}
        {"kind":"eval","metrics":{"accuracy":0.78,"auc":0.8363,"count":16384,"loss":0.4775,"normalizedEntropy":0.72},"step":200,"time":"2026-12-07T07:00:02.100Z"}
        {"kind":"final","stepsTrained":200,"trainLoss":0.52,"time":"2026-12-07T07:00:02.200Z"}

        """

    static func cost(_ forward: Double, _ backward: Double, _ communication: Double) -> String {
        #"{"backward":\#(backward),"communication":\#(communication),"forward":\#(forward)}"#
    }

    static func phases(_ embedding: Double, _ communication: Double, _ dense: Double, _ data: Double) -> String {
        #"{"communicationMilliseconds":\#(communication),"dataMilliseconds":\#(data),"denseCPUMilliseconds":\#(dense),"denseMilliseconds":\#(dense),"#
            + #""embeddingCPUMilliseconds":\#(embedding),"embeddingMilliseconds":\#(embedding)}"#
    }

    @Test func dlrmChartsCarryEveryRecordedValue() throws {
        try withTemporaryDirectory("report-dlrm") { directory in
            let metrics = try write(Self.dlrmMetrics, "dlrm.jsonl", in: directory)
            let report = try RunReport(metrics: metrics)
            #expect(report.charts.map(\.file) == ["loss.svg", "auc.svg", "throughput.svg", "phases.svg", "predicted.svg"])
            #expect(report.title == "mpitrain dlrm on 2 ranks")
            #expect(report.keyOptions == "--steps 200 --batch-size 512")

            let loss = try Self.elements("circle", in: chart("loss.svg", of: report))
            #expect(loss.filter { $0["data-series"] == "train" }.map(\.point) == [Point(100, 0.63), Point(200, 0.52)])
            #expect(loss.filter { $0["data-series"] == "held-out" }.map(\.point) == [Point(100, 0.486), Point(200, 0.4775)])
            #expect(loss.first?.title == "train, step 100: 0.63")
            #expect(try Self.elements("circle", in: chart("auc.svg", of: report)).map(\.point) == [Point(100, 0.832), Point(200, 0.8363)])
            #expect(try Self.elements("circle", in: chart("throughput.svg", of: report)).map(\.point) == [Point(100, 820000.5), Point(200, 790000.25)])

            // Phase bars: each rank's mean over both reports, laid end to end.
            let bars = try Self.elements("rect", in: chart("phases.svg", of: report)).filter { $0["data-category"] != nil }
            #expect(bars.map { $0["data-category"]! } == ["embedding", "communication", "dense", "data"] + ["embedding", "communication", "dense", "data"])
            let rank0 = bars.prefix(4).map { Double($0["data-length"]!)! }
            for (value, expected) in zip(rank0, [0.06, 0.18, 0.34, 0.21]) { #expect(abs(value - expected) < 1e-12) }
            #expect(Double(bars[1]["data-start"]!)! == rank0[0])
            #expect(bars[6].title?.hasPrefix("rank 1, dense: 0.32 ms") == true)

            // Predicted embedding (forward + backward) and communication beside the measured means.
            let predicted = try Self.elements("rect", in: chart("predicted.svg", of: report)).filter { $0["data-category"] != nil }
            #expect(predicted.map { Double($0["data-length"]!)! }.enumerated().allSatisfy { i, value in
                abs(value - [0.09, 0.02, 0.06, 0.18, 0.11, 0.03, 0.07, 0.26][i]) < 1e-12
            })
            #expect(predicted[0].title == "rank 0 predicted, embedding: 0.09 ms")

            let again = try RunReport(metrics: metrics)
            #expect(again.charts.map(\.svg) == report.charts.map(\.svg) && again.indexHTML == report.indexHTML, "the same file gives the same bytes")
        }
    }

    @Test func indexShowsEveryChartAndTheRunsSettings() throws {
        try withTemporaryDirectory("report-index") { directory in
            let metrics = try write(Self.dlrmMetrics, "dlrm.jsonl", in: directory)
            let out = directory.appendingPathComponent("out/nested").path
            let written = try RunReport(metrics: metrics).write(to: out)
            #expect(written.map { ($0 as NSString).lastPathComponent }
                    == ["loss.svg", "auc.svg", "throughput.svg", "phases.svg", "predicted.svg", "index.html"])
            let index = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
            #expect(index.contains("<h1>mpitrain dlrm on 2 ranks</h1>"))
            #expect(index.contains(#"<object type="image/svg+xml" data="predicted.svg">"#))
            #expect(index.contains("<code>data-path</code></td><td><code>a.tsv b b.tsv</code>"))
            #expect(index.contains("<code>random-pooling</code></td><td><code>false</code>") && !index.contains("<code>plan</code>"))
            #expect(index.contains("Command line: <code>mpitrain dlrm --steps 200 --data-path a.tsv &#39;b b.tsv&#39;</code>; build abc1234."))
            #expect(index.contains("&quot;table&quot; : &quot;t0&quot;"), "the plan, escaped")
            #expect(index.contains("records from 2026-12-07T07:00:00.000Z to 2026-12-07T07:00:02.100Z"))
            for file in written where file.hasSuffix(".svg") { _ = try XMLDocument(data: Data(contentsOf: URL(fileURLWithPath: file))) }
        }
    }

    @Test func gnnChartsAndBothTraceFormats() throws {
        try withTemporaryDirectory("report-gnn") { directory in
            let epochs = (1...5).map { epoch in
                #"{"bytesSent":1024,"epoch":\#(epoch),"kind":"epoch","loss":\#(2.0 / Double(epoch)),"seconds":0.004,"#
                    + #""testAccuracy":0.\#(epoch + 2),"time":"2026-12-07T07:00:0\#(epoch).000Z","trainAccuracy":0.\#(epoch + 4),"validationAccuracy":0.\#(epoch + 1)}"#
            }
            let metrics = try write(epochs.joined(separator: "\n") + "\n", "gnn.jsonl", in: directory)
            // Two pipeline ranks, one millisecond per epoch: rank 0 forwards chunk c of epoch e
            // at 1000 e + 100 c µs, rank 1 right after it; events as the trace writer puts them.
            var events: [String] = [#"{"name":"process_labels","ph":"M","pid":0,"tid":0,"args":{"labels":"mpitrain gnn"}}"#,
                                    #"{"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"rank 0 on a"}}"#,
                                    #"{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"rank 1 on b"}}"#]
            for epoch in 1...5 {
                for chunk in 0..<2 {
                    for rank in 0..<2 {
                        events.append(#"{"name":"forward","cat":"compute","ph":"X","pid":\#(rank),"tid":0,"ts":\#(1000 * epoch + 100 * chunk + 100 * rank),"#
                                      + #""dur":90,"args":{"epoch":\#(epoch),"layer":\#(rank),"chunk":\#(chunk)}}"#)
                    }
                }
            }
            // The writer's commas come before each event; a writer may also put them after.
            let written = "[\n" + events.joined(separator: ",\n")
            for (name, text) in [("closed.json", written + "\n]\n"), ("unclosed.json", written), ("trailing-commas.json", "[\n" + events.map { $0 + ",\n" }.joined()),
                                 ("crashed.json", written + ",\n" + #"{"name":"forward","ph":"X","pi"#)] {
                let report = try RunReport(metrics: metrics, trace: write(text, name, in: directory))
                #expect(report.charts.map(\.file) == ["epoch-accuracy.svg", "epoch-loss.svg", "schedule.svg"], "\(name)")
                #expect(report.title == "mpitrain gnn on 2 ranks")
                let schedule = try chart("schedule.svg", of: report)
                #expect(schedule.contains("Phases per rank over epochs 2–4"), "\(name)")
                let spans = try Self.elements("rect", in: schedule).filter { $0["data-category"] == "forward" }
                #expect(spans.count == 12, "\(name): 3 epochs x 2 chunks x 2 ranks")
                #expect(spans.map { Double($0["data-start"]!)! }.min() == 0 && spans.map { Double($0["data-length"]!)! }.allSatisfy { $0 == 0.09 })
                #expect(spans.contains { $0.title == "rank 1 on b: forward, compute, epoch 3, layer 1, chunk 1, 0.090 ms from 1.200 ms" }, "\(name)")
                let texts = try Self.elements("text", in: schedule).compactMap(\.text)
                #expect(texts.contains("rank 0 on a") && texts.contains("rank 1 on b"))
            }
            let accuracy = try Self.elements("circle", in: chart("epoch-accuracy.svg", of: RunReport(metrics: metrics)))
            #expect(accuracy.filter { $0["data-series"] == "validation" }.map(\.point) == (1...5).map { Point(Double($0), Double("0.\($0 + 1)")!) })
        }
    }

    /// The object format of earlier builds: one process, a thread per rank, phases without steps.
    @Test func objectFormatTakesRanksFromThreads() throws {
        try withTemporaryDirectory("report-object-trace") { directory in
            var events = [#"{"ph":"M","name":"thread_name","pid":0,"tid":1,"args":{"name":"rank 1"}}"#]
            for step in 0..<10 {
                for (i, name) in ["input all-to-all", "bottom MLP", "MLP update"].enumerated() {
                    events += (0..<2).map { rank in #"{"name":"\#(name)","ph":"X","pid":0,"tid":\#(rank),"ts":\#(1000 * step + 200 * i),"dur":150}"# }
                }
            }
            events.append(#"{"name":"input all-to-all","ph":"X","pid":0,"tid":0,"ts":10000,"dur":150}"#)
            let path = try write(#"{"displayTimeUnit":"ms","traceEvents":["# + events.joined(separator: ",") + "]}", "trace.json", in: directory)
            let trace = try TraceLog(path: path)
            #expect(Set(trace.phases.map(\.rank)) == [0, 1] && trace.rankNames == [1: "rank 1"] && trace.stepName == nil)
            let window = trace.typicalWindow(3)
            #expect(window.description == "3 cycles of rank 0's 'bottom MLP'")
            #expect(window.end - window.start == 3000)
        }
    }

    @Test func pointsSitWhereTheAxesPutThemAndNonFiniteOnesAreLeftOut() throws {
        let values: [(x: Double, y: Double)] = [(1, 0.5), (2, .nan), (3, 0.25), (.infinity, 1), (5, -.infinity), (6, 0.125)]
        let chart = try #require(LineChart(title: "Loss & <more>", xLabel: "step", yLabel: "loss", series: [.init("a \"b\" & c", values)]))
        #expect(chart.series[0].points.map(\.y) == [0.5, 0.25, 0.125])
        let svg = chart.svg
        #expect(!svg.lowercased().contains("nan") && !svg.lowercased().contains("inf"))
        #expect(svg.contains("Loss &amp; &lt;more&gt;") && svg.contains("a &quot;b&quot; &amp; c"))
        for circle in try Self.elements("circle", in: svg) {
            #expect(abs(Double(circle["cx"]!)! - chart.x.pixel(circle.point.x)) <= 0.051, "rounded to a tenth of a pixel")
            #expect(abs(Double(circle["cy"]!)! - chart.y.pixel(circle.point.y)) <= 0.051)
        }
        // Round ticks: a step of 1, 2 or 5 times a power of ten, and ends on its multiples around the data.
        for scale in [chart.x, chart.y] {
            let mantissa = scale.step / pow(10, log10(scale.step).rounded(.down))
            #expect([1, 2, 5].contains { abs(mantissa - $0) < 1e-9 }, "step \(scale.step)")
            for end in [scale.lower, scale.upper] { #expect(abs(end / scale.step - (end / scale.step).rounded()) < 1e-9) }
        }
        #expect(chart.y.lower <= 0.125 && chart.y.upper >= 0.5 && chart.x.lower <= 1 && chart.x.upper >= 6)
        #expect(LineChart(title: "t", xLabel: "x", yLabel: "y", series: [.init("only NaN", [(1, .nan)])]) == nil)
    }

    @Test func badInputIsOneLineNamingTheFileAndLine() throws {
        try withTemporaryDirectory("report-bad") { directory in
            func problem(_ metrics: String, trace: String? = nil) -> String? {
                do { _ = try RunReport(metrics: metrics, trace: trace); return nil } catch { return error.description }
            }
            let missing = directory.appendingPathComponent("none.jsonl").path
            #expect(problem(missing) == "\(missing): no such metrics file")
            #expect(problem(directory.path) == "\(directory.path): a directory, not a metrics file")
            let cut = try write(#"{"kind":"train","step":1,"loss":0.5}"# + "\n" + #"{"kind":"train","step":2,"lo"# + "\n", "cut.jsonl", in: directory)
            #expect(problem(cut) == "\(cut):2: not JSON (unexpected end of file during JSON parse at column 29)")
            let text = try write(#"{"kind":"train","step":1,"loss":0.5}"# + "\nstep 2 loss 0.4\n", "text.jsonl", in: directory)
            #expect(problem(text) == "\(text):2: not JSON (invalid value at column 1)")
            let array = try write("[1, 2]\n", "array.jsonl", in: directory)
            #expect(problem(array) == "\(array):1: not a JSON object")
            let nothing = try write(#"{"kind":"config","command":"dlrm"}"# + "\n" + #"{"kind":"sketch","step":5}"# + "\n", "nothing.jsonl", in: directory)
            #expect(problem(nothing) == "\(nothing): no train, eval or epoch records to chart")

            let metrics = try write(Self.dlrmMetrics, "dlrm.jsonl", in: directory)
            let badTrace = try write("[\n" + #"{"ph":"X","name":"a","pid":0,"ts":1,"dur":2},"# + "\n" + #"{"ph":"X" "name":"b"},"# + "\n]\n", "bad.json", in: directory)
            #expect(problem(metrics, trace: badTrace) == "\(badTrace):3: not JSON (invalid value at column 11)")
            let noPhases = try write(#"{"traceEvents":[{"ph":"M","name":"thread_name","pid":0,"tid":0,"args":{"name":"rank 0"}}]}"#, "empty.json", in: directory)
            #expect(problem(metrics, trace: noPhases) == "\(noPhases): no timed phases (\"ph\": \"X\") to chart")

            let file = try write("keep me", "file", in: directory)
            #expect(throws: ConfigError.self) { try RunReport(metrics: metrics).write(to: file) }
            #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")
        }
    }

    /// The command as a user runs it: one line per file written, or one error line and a non-zero status.
    @Test func commandPrintsEachFileOrOneErrorLine() throws {
        try withTemporaryDirectory("report-cli") { directory in
            let metrics = try write(Self.dlrmMetrics, "dlrm.jsonl", in: directory)
            let out = directory.appendingPathComponent("report").path
            let run = try MPIRun.mpitrain(["report", metrics, "--out", out])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout == ["loss", "auc", "throughput", "phases", "predicted"].map { "wrote \(out)/\($0).svg\n" }.joined() + "wrote \(out)/index.html\n")
            let file = try write("keep me", "file", in: directory)
            let refused = try MPIRun.mpitrain(["report", metrics, "--out", file])
            #expect(refused.status != 0 && refused.stdout.isEmpty)
            #expect(refused.stderr == "mpitrain: error: \(file): not a directory; the report directory is one\n")
            let missing = try MPIRun.mpitrain(["report", metrics + ".gone", "--out", out])
            #expect(missing.status != 0 && missing.stderr == "mpitrain: error: \(metrics).gone: no such metrics file\n")
        }
    }

    /// What `dlrm --metrics --trace` writes today charts: the reader keeps up with the writer.
    @Test func aRealRunsFilesChart() throws {
        try withTemporaryDirectory("report-real") { directory in
            let metrics = directory.appendingPathComponent("dlrm.jsonl").path, trace = directory.appendingPathComponent("trace.json").path
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "40", "--batch-size", "64", "--print-every", "10", "--eval-every", "20",
                                           "--eval-samples", "512", "--metrics", metrics, "--trace", trace])
            #expect(run.status == 0, "\(run.stderr)")
            let report = try RunReport(metrics: metrics, trace: trace)
            #expect(report.charts.map(\.file) == ["loss.svg", "auc.svg", "throughput.svg", "phases.svg", "predicted.svg", "schedule.svg"])
            #expect(report.title == "mpitrain dlrm on 1 rank")
            #expect(report.keyOptions.hasPrefix("--data synthetic --steps 40 --batch-size 64"), "\(report.keyOptions)")
            #expect(try Self.elements("circle", in: chart("loss.svg", of: report)).map(\.point.x) == [10, 20, 30, 40, 20, 40])
            #expect(try chart("schedule.svg", of: report).contains("Phases per rank over steps "))
        }
    }

    // MARK: - Helpers

    struct Point: Equatable, CustomStringConvertible {
        let x: Double, y: Double
        init(_ x: Double, _ y: Double) { (self.x, self.y) = (x, y) }
        var description: String { "(\(x), \(y))" }
    }

    /// An SVG element as the tests read it.
    struct Element {
        let attributes: [String: String]
        let title: String?
        let text: String?
        subscript(_ name: String) -> String? { attributes[name] }
        /// The exact values a marker carries.
        var point: Point { Point(Double(attributes["data-x"]!)!, Double(attributes["data-y"]!)!) }
    }

    /// The elements named `name` in `svg`, which must parse as XML.
    static func elements(_ name: String, in svg: String) throws -> [Element] {
        let document = try XMLDocument(data: Data(svg.utf8))
        return try document.nodes(forXPath: "//*[local-name()='\(name)']").compactMap { $0 as? XMLElement }.map { element in
            var attributes: [String: String] = [:]
            for attribute in element.attributes ?? [] { attributes[attribute.name ?? ""] = attribute.stringValue }
            let title = element.children?.first { $0.localName == "title" }?.stringValue
            let text = element.children?.filter { $0.kind == .text }.compactMap(\.stringValue).joined()
            return Element(attributes: attributes, title: title, text: text)
        }
    }

    func chart(_ file: String, of report: RunReport) throws -> String { try #require(report.charts.first { $0.file == file }).svg }

    func write(_ text: String, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
