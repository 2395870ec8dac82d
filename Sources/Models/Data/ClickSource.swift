import Foundation

/// Where a run's training and held-out samples come from: synthetic clicks drawn for its
/// tables, or a Criteo TSV file.
public enum ClickSource: CustomStringConvertible {
    /// Synthetic clicks, and the spec file their tables came from, if any.
    case synthetic(SyntheticClicks, specs: String?)
    case criteo(CriteoTSVReader)

    /// Samples `slice` of batch `step` of `size` samples. Every rank reads a Criteo batch
    /// whole and keeps its slice, so all ranks stay at the same place in the file.
    public func next(step: Int, size: Int, slice: Range<Int>) throws -> ClickBatch {
        switch self {
        case .synthetic(let generator, _):
            return generator.batch(samples: step * size + slice.lowerBound ..< step * size + slice.upperBound)
        case .criteo(let reader):
            guard let batch = try reader.nextBatch(size: size) else {
                throw DatasetError(path: reader.path, line: 0, reason: "no training rows (every row held out or skipped)")
            }
            return slice == 0..<size ? batch : batch.samples(slice)
        }
    }

    /// Moves past the first `steps` batches, as a run resumed at that step must.
    public func skip(steps: Int, size: Int) throws {
        guard case .criteo(let reader) = self else { return }
        for _ in 0..<steps { _ = try reader.nextBatch(size: size) }
    }

    public func heldOut(count: Int) -> ClickBatch {
        switch self {
        case .synthetic(let generator, _): generator.heldOut(count: count)
        case .criteo(let reader): reader.heldOut
        }
    }

    public var description: String {
        switch self {
        case .synthetic(let g, let specs):
            "synthetic clicks" + (specs.map { " of the tables in \(URL(fileURLWithPath: $0).lastPathComponent)" } ?? "") + ", "
                + Self.describe(g.traffic) + ", teacher DLRM labels, seed \(g.seed)"
        case .criteo(let r):
            "\(r.path), every \(r.holdoutEvery)-th line held out"
        }
    }

    /// Pooling, bag sizes and row distributions of `traffic` in a few words.
    static func describe(_ traffic: [TableTraffic]) -> String {
        func number(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value) }
        let pooling = traffic.map(\.poolingFactor)
        let (low, high) = (pooling.min() ?? 0, pooling.max() ?? 0)
        let poolingText = low == high ? "\(number(low)) indices per bag" : "\(number(low))-\(number(high)) indices per bag"
        let bags = Set(traffic.map(\.bagSizes.rawValue)).sorted().joined(separator: "/")
        let exponents = traffic.compactMap { t -> Double? in if case .distribution(.zipf(let s)) = t.source { s } else { nil } }
        var kinds: [String] = []
        if traffic.contains(where: { $0.source == .distribution(.uniform) }) { kinds.append("uniform") }
        if let low = exponents.min(), let high = exponents.max() { kinds.append(low == high ? "zipf:\(low)" : "zipf:\(low)-\(high)") }
        if traffic.contains(where: { if case .groups = $0.source { true } else { false } }) { kinds.append("reuse bins") }
        return poolingText + (bags == "fixed" ? "" : " (\(bags))") + ", " + kinds.joined(separator: ", ")
    }

    /// "; N bad rows skipped" when a Criteo reader skipped any, else empty.
    public var skippedSuffix: String {
        if case .criteo(let reader) = self, reader.skippedRows > 0 { return "; \(reader.skippedRows) bad rows skipped" }
        return ""
    }
}
