import Sharding

/// What the coordinator decoded from one window's summed sketches.
public struct LookupReport: Sendable {
    /// A request (or hot row) and its count.
    public struct Entry: Sendable, Equatable {
        public let key: LookupKey
        public let count: Int64

        public init(key: LookupKey, count: Int64) {
            self.key = key
            self.count = count
        }
    }

    /// The step after which the window closed, and the window's number.
    public let step: Int
    public let window: Int
    /// Requests sent but never served (count: how many copies went missing).
    public let lost: [Entry]
    /// Requests served more often than sent (count: how many extra times).
    public let duplicated: [Entry]
    /// False when the audit sketch was too small to decode: lost and duplicated are partial.
    public let auditComplete: Bool
    /// Per table, its rows with the most lookups in the window (at least the hot threshold),
    /// most first; `hotComplete` false when the heavy-hitter sketch could not be decoded.
    public let hotRows: [[Entry]]
    public let hotComplete: Bool
    /// Per table, the reuse bins measured over the window (nil: no lookups counted).
    public let reuse: [ReuseBins?]
    /// The faults the ranks injected, when injecting: packed key to +drops or −duplicates.
    public let injected: [UInt64: Int64]?
    /// Bytes each rank contributed to the exchange.
    public let bytesPerRank: Int
    /// The fraction of request keys the audit covered (1: every request).
    public let auditedFraction: Double
    /// The CPU time a rank spent auditing and counting per step of the window, mean over ranks
    /// (the monitor's own work: not the exchange's collectives, and not per-bag sends).
    public let cpuSecondsPerStep: Double

    init(step: Int, window: Int, requests: FermatSketch.Decoded, hotRows: FermatSketch.Decoded, topK: Int,
         reuseCounts: [UInt64], tables: Int, injected: [UInt64: Int64]?, bytesPerRank: Int, auditedFraction: Double, cpuSecondsPerStep: Double) {
        self.auditedFraction = auditedFraction
        self.cpuSecondsPerStep = cpuSecondsPerStep
        self.step = step
        self.window = window
        let entries = requests.counts.map { Entry(key: LookupKey(packed: $0.key), count: $0.value) }.sorted { $0.key < $1.key }
        lost = entries.filter { $0.count > 0 }
        duplicated = entries.filter { $0.count < 0 }.map { Entry(key: $0.key, count: -$0.count) }
        auditComplete = requests.complete
        var byTable = [[Entry]](repeating: [], count: tables)
        for (key, count) in hotRows.counts {
            let entry = Entry(key: LookupKey(packed: key), count: count)
            if byTable.indices.contains(entry.key.table) { byTable[entry.key.table].append(entry) }
        }
        self.hotRows = byTable.map { Array($0.sorted { ($0.count, $1.key) > ($1.count, $0.key) }.prefix(topK)) }
        hotComplete = hotRows.complete
        reuse = (0..<tables).map { t in
            let counts = reuseCounts[t * ReuseBins.count..<(t + 1) * ReuseBins.count]
            let rows = counts.reduce(0, +)
            return rows == 0 ? nil : try? ReuseBins(fractions: counts.map { Double($0) / Double(rows) })
        }
        self.injected = injected
        self.bytesPerRank = bytesPerRank
    }

    /// True when nothing was lost or duplicated and the audit decoded completely.
    public var healthy: Bool { auditComplete && lost.isEmpty && duplicated.isEmpty }

    /// True when the report names exactly the injected faults.
    public var matchesInjected: Bool? {
        injected.map { truth in
            auditComplete && Dictionary(uniqueKeysWithValues: lost.map { ($0.key.packed, $0.count) } + duplicated.map { ($0.key.packed, -$0.count) }) == truth
        }
    }
}
