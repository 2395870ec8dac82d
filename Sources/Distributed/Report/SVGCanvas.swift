import Foundation

/// A small SVG writer: elements appended as text in a fixed order, with attribute values and
/// text escaped and coordinates rounded to a tenth of a pixel, so the same data always gives
/// the same bytes. Charts share its frame: title, legend, axes.
struct SVGCanvas {
    static let width = 760.0
    /// Colours of series and phases, in order of first appearance (Tableau 10).
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
    /// Average advance of a 12 px sans-serif character, to lay out labels without measuring them.
    static let characterWidth = 7.0

    private var body = ""

    /// Appends `<name attributes>`, with `title` as its tooltip and `text` as its content.
    mutating func element(_ name: String, _ attributes: KeyValuePairs<String, String>, title: String? = nil, text: String? = nil) {
        body += "<\(name)"
        for (key, value) in attributes { body += " \(key)=\"\(Self.escape(value))\"" }
        guard title != nil || text != nil else { body += "/>\n"; return }
        body += ">" + (title.map { "<title>\(Self.escape($0))</title>" } ?? "") + (text.map(Self.escape) ?? "") + "</\(name)>\n"
    }

    /// The document, `height` pixels tall.
    func document(height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.pixels(Self.width))\" height=\"\(Self.pixels(height))\" "
            + "viewBox=\"0 0 \(Self.pixels(Self.width)) \(Self.pixels(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n"
    }

    /// Draws the title and, below it, a legend of `names` in palette order.
    mutating func header(title: String, legend names: [String]) {
        element("text", ["x": "20", "y": "26", "font-size": "16", "font-weight": "bold"], text: title)
        for (i, (name, at)) in zip(names, Self.legend(names).positions).enumerated() {
            element("rect", ["x": Self.pixels(at.x), "y": Self.pixels(at.y - 10), "width": "14", "height": "10", "fill": Self.color(i)])
            element("text", ["x": Self.pixels(at.x + 20), "y": Self.pixels(at.y)], text: name)
        }
    }

    /// Where each legend entry goes (wrapped to the width), and the y at which a plot may start under them.
    static func legend(_ names: [String]) -> (positions: [(x: Double, y: Double)], plotTop: Double) {
        var x = 20.0, y = 48.0
        var positions: [(x: Double, y: Double)] = []
        for name in names {
            let advance = 22 + Double(name.count) * characterWidth + 14
            if x > 20 && x + advance > width - 20 { x = 20; y += 18 }
            positions.append((x, y))
            x += advance
        }
        return (positions, y + 30)
    }

    /// Draws a horizontal axis below a plot spanning `top...bottom`, with grid lines and `label` centred under it.
    mutating func xAxis(_ scale: AxisScale, top: Double, bottom: Double, label: String) {
        for tick in scale.ticks {
            let x = Self.pixels(scale.pixel(tick))
            element("line", ["x1": x, "y1": Self.pixels(top), "x2": x, "y2": Self.pixels(bottom), "stroke": "#e0e0e0"])
            element("text", ["x": x, "y": Self.pixels(bottom + 16), "text-anchor": "middle"], text: scale.label(tick))
        }
        element("line", ["x1": Self.pixels(scale.start), "y1": Self.pixels(bottom), "x2": Self.pixels(scale.end), "y2": Self.pixels(bottom), "stroke": "black"])
        element("text", ["x": Self.pixels((scale.start + scale.end) / 2), "y": Self.pixels(bottom + 36), "text-anchor": "middle"], text: label)
    }

    /// Draws a vertical axis left of a plot spanning `left...right`, with grid lines and `label` turned along it.
    mutating func yAxis(_ scale: AxisScale, left: Double, right: Double, label: String) {
        for tick in scale.ticks {
            let y = Self.pixels(scale.pixel(tick))
            element("line", ["x1": Self.pixels(left), "y1": y, "x2": Self.pixels(right), "y2": y, "stroke": "#e0e0e0"])
            element("text", ["x": Self.pixels(left - 6), "y": y, "dy": "4", "text-anchor": "end"], text: scale.label(tick))
        }
        element("line", ["x1": Self.pixels(left), "y1": Self.pixels(scale.start), "x2": Self.pixels(left), "y2": Self.pixels(scale.end), "stroke": "black"])
        let middle = Self.pixels((scale.start + scale.end) / 2)
        element("text", ["x": "18", "y": middle, "transform": "rotate(-90 18 \(middle))", "text-anchor": "middle"], text: label)
    }

    static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// A coordinate with at most one decimal ("12", "12.5").
    static func pixels(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(format: "%.1f", tenths / 10)
    }

    /// `text` safe inside an element or a quoted attribute.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// A linear map from values to pixels whose domain ends on multiples of a round step (1, 2 or
/// 5 times a power of ten), so that the ticks read as round numbers.
public struct AxisScale: Sendable {
    public let lower: Double
    public let upper: Double
    public let step: Double
    /// The pixels of `lower` and `upper` (for a vertical axis, `start` is the bottom).
    public let start: Double
    public let end: Double

    /// A scale over `values` (finite ones; zero too when `includingZero`) with about `ticks` ticks.
    init(_ values: [Double], includingZero: Bool = false, from start: Double, to end: Double, ticks: Int = 5) {
        var low = values.min() ?? 0, high = values.max() ?? 1
        if includingZero { low = min(low, 0); high = max(high, 0) }
        if low == high { (low, high) = low == 0 ? (0, 1) : (low - abs(low) * 0.05, high + abs(high) * 0.05) }
        let raw = (high - low) / Double(ticks)
        let power = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / power
        step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power
        lower = (low / step).rounded(.down) * step
        upper = (high / step).rounded(.up) * step
        self.start = start
        self.end = end
    }

    public func pixel(_ value: Double) -> Double { start + (value - lower) / (upper - lower) * (end - start) }

    var ticks: [Double] { (0...Int(((upper - lower) / step).rounded())).map { lower + Double($0) * step } }

    /// A tick's text: as many decimals as the step needs, thousands as k and millions as M.
    func label(_ value: Double) -> String {
        let (divisor, suffix) = max(abs(lower), abs(upper)) >= 1e6 ? (1e6, "M") : max(abs(lower), abs(upper)) >= 1e4 ? (1e3, "k") : (1, "")
        let decimals = max(0, Int(-(log10(step / divisor) + 1e-9).rounded(.down)))
        let shown = abs(value) < step * 1e-9 ? 0 : value / divisor
        return String(format: "%.\(decimals)f", shown) + suffix
    }
}
