import Foundation

/// Horizontal bars made of spans, one row per rank: phase times laid end to end, or phases at
/// their times (a schedule). Spans are coloured by category; each one's tooltip gives its exact
/// values (also in `data-start` and `data-length`).
public struct SpanChart: Sendable {
    public struct Span: Sendable {
        public let start: Double
        public let length: Double
        public let category: String
        public let tooltip: String
    }

    public struct Row: Sendable {
        public let label: String
        public let spans: [Span]
        /// Text after the row's last span (a bar's total).
        public let note: String?
    }

    public let title: String
    public let xLabel: String
    /// Rows with their finite spans.
    public let rows: [Row]
    /// Span categories in order of first appearance, which is their colours' order.
    public let categories: [String]
    public let x: AxisScale

    static let rowHeight = 22.0, rowGap = 10.0

    /// Nil when no row has a finite span.
    public init?(title: String, xLabel: String, rows: [Row]) {
        let rows = rows.map { row in
            Row(label: row.label, spans: row.spans.filter { $0.start.isFinite && $0.length.isFinite && $0.length >= 0 }, note: row.note)
        }
        guard rows.contains(where: { !$0.spans.isEmpty }) else { return nil }
        self.title = title
        self.xLabel = xLabel
        self.rows = rows
        var categories: [String] = []
        for span in rows.flatMap(\.spans) where !categories.contains(span.category) { categories.append(span.category) }
        self.categories = categories
        let labelWidth = Double(rows.map(\.label.count).max() ?? 0) * SVGCanvas.characterWidth
        x = AxisScale(rows.flatMap { $0.spans.flatMap { [$0.start, $0.start + $0.length] } }, includingZero: true,
                      from: max(80, 30 + labelWidth), to: SVGCanvas.width - 80, ticks: 8)
    }

    /// One bar per entry of `bars`, its segments laid end to end from zero and its total at its end.
    public static func stacked(title: String, xLabel: String, unit: String,
                               bars: [(label: String, segments: [(category: String, value: Double)])]) -> SpanChart? {
        SpanChart(title: title, xLabel: xLabel, rows: bars.map { bar in
            var start = 0.0
            let spans = bar.segments.map { segment in
                defer { start += segment.value }
                return Span(start: start, length: segment.value, category: segment.category,
                            tooltip: "\(bar.label), \(segment.category): \(LineChart.format(segment.value)) \(unit)")
            }
            return Row(label: bar.label, spans: spans, note: String(format: "%.3g ", start) + unit)
        })
    }

    public var svg: String {
        var canvas = SVGCanvas()
        canvas.header(title: title, legend: categories)
        let top = SVGCanvas.legend(categories).plotTop
        let bottom = top + Double(rows.count) * (Self.rowHeight + Self.rowGap)
        canvas.xAxis(x, top: top, bottom: bottom, label: xLabel)
        for (r, row) in rows.enumerated() {
            let y = top + Self.rowGap / 2 + Double(r) * (Self.rowHeight + Self.rowGap)
            canvas.element("text", ["x": SVGCanvas.pixels(x.start - 8), "y": SVGCanvas.pixels(y + Self.rowHeight / 2 + 4), "text-anchor": "end"],
                           text: row.label)
            for span in row.spans {
                let left = x.pixel(span.start)
                canvas.element("rect", ["x": SVGCanvas.pixels(left), "y": SVGCanvas.pixels(y),
                                        "width": SVGCanvas.pixels(max(x.pixel(span.start + span.length) - left, 0.5)),
                                        "height": SVGCanvas.pixels(Self.rowHeight),
                                        "fill": SVGCanvas.color(categories.firstIndex(of: span.category)!),
                                        "data-category": span.category, "data-start": "\(span.start)", "data-length": "\(span.length)"],
                               title: span.tooltip)
            }
            if let note = row.note, let end = row.spans.map({ $0.start + $0.length }).max() {
                canvas.element("text", ["x": SVGCanvas.pixels(x.pixel(end) + 6), "y": SVGCanvas.pixels(y + Self.rowHeight / 2 + 4)], text: note)
            }
        }
        return canvas.document(height: bottom + 56)
    }
}
