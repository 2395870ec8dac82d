import Models

/// Time left in a loop of `total` similar units (tasks, shard sets, iterations), from the pace
/// of the units done so far: what the progress lines of long commands print.
struct ETA {
    private let start = ContinuousClock.now
    let total: Int

    init(total: Int) { self.total = total }

    /// "ETA 4 min 05 s" after `done` units; "ETA ?" before the first.
    func text(done: Int) -> String {
        guard done > 0 else { return "ETA ?" }
        let seconds = (ContinuousClock.now - start).seconds / Double(done) * Double(max(total - done, 0))
        return "ETA " + Self.duration(seconds)
    }

    /// "42 s", "4 min 05 s", "2 h 03 min".
    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole) s" }
        if whole < 3600 { return "\(whole / 60) min " + pad2(whole % 60) + " s" }
        return "\(whole / 3600) h " + pad2(whole / 60 % 60) + " min"
    }

    private static func pad2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
