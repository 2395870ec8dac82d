import Distributed
import Foundation
import Sharding

/// The coordinator's printout of one window's lookup report.
struct LookupReportText {
    let report: LookupReport
    let tables: [String]
    /// Entries listed per kind before "... and N more".
    static let listed = 10

    init(_ report: LookupReport, tables: [String]) {
        self.report = report
        self.tables = tables
    }

    var lines: [String] {
        var lines: [String] = []
        let sampled = report.auditedFraction < 1 ? String(format: ", %.3g of request keys audited", report.auditedFraction) : ""
        let cost = String(format: ", %.2f ms CPU per rank per step", report.cpuSecondsPerStep * 1e3)
        let head = "sketch window \(report.window) (to step \(report.step), \(report.bytesPerRank) B per rank exchanged\(sampled)\(cost)): "
        if report.healthy {
            lines.append(head + "healthy, every \(report.auditedFraction < 1 ? "audited " : "")lookup request served exactly once")
        } else {
            lines.append(head + "\(report.lost.map(\.count).reduce(0, +)) lookup requests lost, "
                         + "\(report.duplicated.map(\.count).reduce(0, +)) duplicated"
                         + (report.auditComplete ? "" : " (audit sketch overloaded: only part decoded; raise --audit-width)"))
            for (kind, entries) in [("lost", report.lost), ("duplicated", report.duplicated)] {
                for entry in entries.prefix(Self.listed) {
                    lines.append("  \(kind.padding(toLength: 11, withPad: " ", startingAt: 0))\(name(entry.key.table)) row \(entry.key.row) from rank \(entry.key.source)"
                                 + (entry.count > 1 ? " x\(entry.count)" : ""))
                }
                if entries.count > Self.listed { lines.append("  ... and \(entries.count - Self.listed) more \(kind)") }
            }
        }
        if let injected = report.injected {
            let drops = injected.values.filter { $0 > 0 }.reduce(0, +), duplicates = -injected.values.filter { $0 < 0 }.reduce(0, +)
            lines.append("  injected: \(drops) drops, \(duplicates) duplicates; the report "
                         + (report.matchesInjected == true ? "names exactly these" : "DOES NOT match them"))
        }
        let hot = report.hotRows.enumerated().filter { !$0.element.isEmpty }
        if hot.isEmpty {
            lines.append("  hot rows: none" + (report.hotComplete ? "" : " decoded (hot-row sketch overloaded: raise --hot-threshold or --hot-width)"))
        } else {
            lines.append("  hot rows (row: lookups in the window)" + (report.hotComplete ? "" : ", partial: hot-row sketch overloaded"))
            for (table, rows) in hot {
                lines.append("    \(name(table)): " + rows.map { "\($0.key.row): \($0.count)" }.joined(separator: ", "))
            }
        }
        for (table, bins) in report.reuse.enumerated() {
            guard let bins else { continue }
            let shown = bins.fractions.enumerated().filter { $0.element >= 0.005 }.map { bin, fraction in
                String(format: "%@ %.0f%%", Self.binLabel(bin), fraction * 100)
            }
            lines.append("  reuse \(name(table)): " + shown.joined(separator: "  "))
        }
        return lines
    }

    private func name(_ table: Int) -> String { tables.indices.contains(table) ? tables[table] : "table \(table)" }

    /// "1x", "2x", "3-4x", ..., ">32768x".
    static func binLabel(_ bin: Int) -> String {
        switch bin {
        case 0: "1x"
        case 1: "2x"
        case ReuseBins.count - 1: ">\(1 << (bin - 1))x"
        default: "\((1 << (bin - 1)) + 1)-\(1 << bin)x"
        }
    }
}

/// One report as a `--metrics` JSON line.
struct SketchRecord: Encodable {
    struct Request: Encodable {
        let table: Int
        let row: Int
        let source: Int
        let count: Int64
    }

    struct HotRow: Encodable {
        let table: Int
        let row: Int
        let lookups: Int64
    }

    let kind = "sketch"
    let step: Int
    let window: Int
    let healthy: Bool
    let auditComplete: Bool
    let lost: [Request]
    let duplicated: [Request]
    let injectedLost: [Request]?
    let injectedDuplicated: [Request]?
    let hotRows: [HotRow]
    let hotComplete: Bool
    let reuse: [[Double]?]
    let bytesPerRank: Int
    let auditedFraction: Double
    let cpuMillisecondsPerStep: Double

    init(_ report: LookupReport) {
        func request(_ entry: LookupReport.Entry) -> Request {
            Request(table: entry.key.table, row: entry.key.row, source: entry.key.source, count: entry.count)
        }
        step = report.step
        window = report.window
        healthy = report.healthy
        auditComplete = report.auditComplete
        lost = report.lost.map(request)
        duplicated = report.duplicated.map(request)
        let injected = report.injected?.map { LookupReport.Entry(key: LookupKey(packed: $0.key), count: $0.value) }.sorted { $0.key < $1.key }
        injectedLost = injected?.filter { $0.count > 0 }.map(request)
        injectedDuplicated = injected?.filter { $0.count < 0 }.map { request(.init(key: $0.key, count: -$0.count)) }
        hotRows = report.hotRows.joined().map { HotRow(table: $0.key.table, row: $0.key.row, lookups: $0.count) }
        hotComplete = report.hotComplete
        reuse = report.reuse.map { $0?.fractions }
        bytesPerRank = report.bytesPerRank
        auditedFraction = report.auditedFraction
        cpuMillisecondsPerStep = report.cpuSecondsPerStep * 1e3
    }
}
