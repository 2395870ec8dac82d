import Foundation

/// Series of values against a shared x (steps or epochs): one line per series, and a marker
/// per point whose tooltip gives the exact values (also in `data-x` and `data-y`).
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public let name: String
        public let points: [(x: Double, y: Double)]

        /// A series of the finite points among `points`.
        public init(_ name: String, _ points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points.filter { $0.x.isFinite && $0.y.isFinite }
        }
    }

    public let title: String
    public let xLabel: String
    public let yLabel: String
    /// The series with at least one point.
    public let series: [Series]
    public let x: AxisScale
    public let y: AxisScale

    static let height = 420.0
    static let left = 80.0, right = SVGCanvas.width - 24, bottom = height - 56
    /// Most points per series drawn with visible markers.
    static let visibleMarkers = 120

    /// Nil when no series has a point.
    public init?(title: String, xLabel: String, yLabel: String, series: [Series]) {
        let drawn = series.filter { !$0.points.isEmpty }
        guard !drawn.isEmpty else { return nil }
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = drawn
        x = AxisScale(drawn.flatMap { $0.points.map(\.x) }, from: Self.left, to: Self.right, ticks: 8)
        y = AxisScale(drawn.flatMap { $0.points.map(\.y) }, from: Self.bottom, to: SVGCanvas.legend(drawn.map(\.name)).plotTop)
    }

    public var svg: String {
        var canvas = SVGCanvas()
        canvas.header(title: title, legend: series.map(\.name))
        canvas.yAxis(y, left: Self.left, right: Self.right, label: yLabel)
        canvas.xAxis(x, top: y.end, bottom: Self.bottom, label: xLabel)
        for (i, line) in series.enumerated() {
            let color = SVGCanvas.color(i)
            let points = line.points.map { "\(SVGCanvas.pixels(x.pixel($0.x))),\(SVGCanvas.pixels(y.pixel($0.y)))" }
            canvas.element("polyline", ["points": points.joined(separator: " "), "fill": "none", "stroke": color, "stroke-width": "1.5",
                                        "data-series": line.name])
            // Past a point every few pixels markers would hide the line: they stay, unpainted, for their tooltips.
            let opacity = line.points.count > Self.visibleMarkers ? "0" : "1"
            for point in line.points {
                canvas.element("circle", ["cx": SVGCanvas.pixels(x.pixel(point.x)), "cy": SVGCanvas.pixels(y.pixel(point.y)), "r": "2.5",
                                          "fill": color, "fill-opacity": opacity, "data-series": line.name, "data-x": "\(point.x)", "data-y": "\(point.y)"],
                               title: "\(line.name), \(xLabel) \(Self.format(point.x)): \(Self.format(point.y))")
            }
        }
        return canvas.document(height: Self.height)
    }

    /// A value as a tooltip shows it: six significant digits.
    static func format(_ value: Double) -> String { String(format: "%.6g", value) }
}
