import Models
import Sharding

/// One embedding lookup request as the sketches key it: the step window it was sent in, the
/// table, the embedding row and the rank that sent it, packed into 64 bits (row 34, table 10,
/// source 10, window 10 bits; the window wraps at 1024).
public struct LookupKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maxTables = 1 << 10, maxRanks = 1 << 10, maxRows = 1 << 34

    public let window: Int
    public let table: Int
    public let row: Int
    public let source: Int

    public init(window: Int, table: Int, row: Int, source: Int) {
        self.window = window & 0x3FF
        self.table = table
        self.row = row
        self.source = source
    }

    public init(packed: UInt64) {
        self.init(window: Int(packed >> 54), table: Int((packed >> 44) & 0x3FF), row: Int(packed & 0x3_FFFF_FFFF),
                  source: Int((packed >> 34) & 0x3FF))
    }

    public var packed: UInt64 { UInt64(window) << 54 | UInt64(table) << 44 | UInt64(source) << 34 | UInt64(row) }

    public static func < (a: LookupKey, b: LookupKey) -> Bool { a.packed < b.packed }

    public var description: String { "table \(table) row \(row) from rank \(source)" }
}

/// Lookup requests dropped or duplicated on purpose inside the data path, from
/// `drop=RATE,dup=RATE,seed=S`: each request's fate is a hash of the seed and where it is in
/// the step, so a run injects the same set every time.
public struct LookupFaults: Sendable, Equatable {
    public enum Fate { case deliver, drop, duplicate }

    public let dropRate: Double
    public let duplicateRate: Double
    public let seed: UInt64

    public init(dropRate: Double, duplicateRate: Double, seed: UInt64) throws(ConfigError) {
        guard dropRate >= 0, duplicateRate >= 0, dropRate + duplicateRate <= 1 else {
            throw ConfigError("fault rates drop=\(dropRate), dup=\(duplicateRate) must be at least 0 and sum to at most 1")
        }
        self.dropRate = dropRate
        self.duplicateRate = duplicateRate
        self.seed = seed
    }

    /// Parses `drop=0.001,dup=0.0005,seed=7` (each part optional; rates default to 0, seed to 0).
    public init(parsing text: String) throws(ConfigError) {
        var drop = 0.0, duplicate = 0.0, seed: UInt64 = 0
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            switch (pair.first, pair.count == 2 ? pair[1] : nil) {
            case ("drop", let value?) where Double(value) != nil: drop = Double(value)!
            case ("dup", let value?) where Double(value) != nil: duplicate = Double(value)!
            case ("seed", let value?) where UInt64(value) != nil: seed = UInt64(value)!
            default: throw ConfigError("--inject-faults: cannot read '\(part)' (expected drop=RATE,dup=RATE,seed=S)")
            }
        }
        try self.init(dropRate: drop, duplicateRate: duplicate, seed: seed)
    }

    /// The fate of the `position`-th index of `sample`'s bag of `table`, sent at `step` from
    /// `source` to `destination`.
    public func fate(step: Int, source: Int, destination: Int, table: Int, sample: Int, position: Int) -> Fate {
        var h = seed
        for part in [step, source, destination, table, sample, position] { h = FermatSketch.mix(h ^ UInt64(part)) }
        let u = Double(h >> 11) * 0x1p-53
        return u < dropRate ? .drop : u < dropRate + duplicateRate ? .duplicate : .deliver
    }
}

/// The trainer measuring its own lookups with sketches. Every request a rank sends counts +1
/// and every request it serves −1, keyed by `LookupKey`; summed over ranks only what was lost
/// (+) or duplicated (−) is left. A window first checks, then locates: each rank sums a seeded
/// hash of its requests' keys with their signs and keeps the requests (`RequestLog`); the sums
/// are added over ranks in one 8-byte allreduce, and only when they do not cancel are the
/// requests inserted into the audit sketch, whose sum over ranks decodes to exactly what was
/// lost or duplicated. A clean window never touches the sketch.
/// The rank owning a table's first columns also counts the table's rows: when the window
/// closes, every row with at least `hotThreshold` lookups enters a heavy-hitter sketch with its
/// count, and the counts give the table's reuse bins.
///
/// With `auditedFraction` below 1 only a seeded sample of bags is audited (as ChameleMon
/// samples flows), for jobs whose lookup rate makes auditing every request too dear: the
/// choice is one hash per bag, not per request, so the requests left out cost nothing.
///
/// Counting is exact (a 16-bit counter per row of each counted table, 2 B per row, and the
/// lookups past 65,535 of a row apart), so no cold row is ever reported hot; the sketches make
/// the exchange small.
public final class LookupMonitor {
    public let every: Int
    public let hotThreshold: UInt16
    public let faults: LookupFaults?
    /// The fraction of bags audited: a bag is audited when the seeded hash of where it is (the
    /// step, the sending rank, the table and the sample) falls below `auditThreshold`, so sender
    /// and server choose alike.
    public let auditedFraction: Double
    private let auditThreshold: UInt64
    private let auditSeed: UInt64
    public let rank: Int
    private(set) var audit: FermatAccumulator
    private(set) var hot: FermatSketch
    /// Per table, the row counters of this window (empty for tables another rank counts).
    private var rowCounts: [[UInt16]]
    /// Per table, lookups of rows whose counter is full (at 65,535), by row.
    private var countsPastFull: [[Int32: Int64]]
    /// The window's audited requests and their signed hash sum.
    private var log: RequestLog
    /// The requests this rank dropped (+1) or duplicated (−1) this window, by packed key.
    private(set) var injected: [UInt64: Int64] = [:]
    private(set) var step = 0
    private var keys: [UInt64] = []
    /// This thread's CPU time in the monitor's own work this window (not in the exchange's
    /// collectives, and not in `send`, which runs per bag).
    private var timer = KernelTimer(countsCPU: true)

    /// `tableRows[t]` rows per table; this rank counts the tables in `countedTables`.
    public init(every: Int, tableRows: [Int], countedTables: Set<Int>, rank: Int, ranks: Int, hotThreshold: Int,
                auditWidth: Int, hotWidth: Int, auditedFraction: Double = 1, faults: LookupFaults?, seed: UInt64) throws {
        guard auditedFraction > 0, auditedFraction <= 1 else { throw ConfigError("--sketch-sample must be in (0, 1]") }
        guard every >= 1 else { throw ConfigError("--sketch-every must be at least 1") }
        guard (1...Int(UInt16.max)).contains(hotThreshold) else { throw ConfigError("--hot-threshold must be in 1...65535") }
        guard tableRows.count <= LookupKey.maxTables, ranks <= LookupKey.maxRanks, tableRows.allSatisfy({ $0 <= LookupKey.maxRows }) else {
            throw ConfigError("lookup sketches key at most \(LookupKey.maxTables) tables of 2^34 rows on \(LookupKey.maxRanks) ranks")
        }
        self.every = every
        self.hotThreshold = UInt16(hotThreshold)
        self.faults = faults
        self.auditedFraction = auditedFraction
        auditThreshold = auditedFraction == 1 ? .max : UInt64(auditedFraction * 0x1p64)
        auditSeed = SplitMix64(seed: seed, stream: "audit-sample").state
        self.rank = rank
        audit = try FermatAccumulator(width: auditWidth, seed: seed)
        hot = try FermatSketch(width: hotWidth, seed: seed)
        rowCounts = tableRows.indices.map { countedTables.contains($0) ? [UInt16](repeating: 0, count: tableRows[$0]) : [] }
        countsPastFull = [[Int32: Int64]](repeating: [:], count: tableRows.count)
        log = RequestLog(seed: SplitMix64(seed: seed, stream: "audit-checksum").state)
    }

    public var window: Int { step / every }

    /// Marks the start of training step `step` (requests are keyed by its window).
    public func begin(step: Int) { self.step = step }

    /// Records the requests of this rank's bags of `table` in `bags`, sent whole.
    func sent(_ bags: BagBatch, table: Int) {
        timer.measure { recordSent(bags, table: table) }
    }

    private func recordSent(_ bags: BagBatch, table: Int) {
        let n = bags.batchSize
        guard auditThreshold != .max else {
            return record(bags.indices[Int(bags.offsets[table * n])..<Int(bags.offsets[(table + 1) * n])], table: table, source: rank, negative: false)
        }
        for sample in 0..<n where auditsBag(source: rank, table: table, sample: sample) {
            record(bags.indices[bags.bag(feature: table, sample: sample)], table: table, source: rank, negative: false)
        }
    }

    /// Appends `rows` (one bag of `table` for `sample`) to `message` for `destination`,
    /// recording each request as sent and then applying the injected faults, as a lossy
    /// transport would.
    func send(_ rows: ArraySlice<Int32>, table: Int, sample: Int, to destination: Int, into message: inout [Int32]) {
        let audited = auditsBag(source: rank, table: table, sample: sample)
        if audited { record(rows, table: table, source: rank, negative: false) }
        guard let faults else {
            message += rows
            return
        }
        for (position, row) in rows.enumerated() {
            let key = LookupKey(window: window, table: table, row: Int(row), source: rank).packed
            switch faults.fate(step: step, source: rank, destination: destination, table: table, sample: sample, position: position) {
            case .deliver: message.append(row)
            case .drop: if audited { injected[key, default: 0] += 1 }
            case .duplicate:
                message.append(row)
                message.append(row)
                if audited { injected[key, default: 0] -= 1 }
            }
        }
    }

    /// Records the requests for `table` served for `source`, its bags laid end to end in
    /// `rows` with their `lengths` (one per sample of `source`), and counts them.
    func serve(_ rows: ArraySlice<Int32>, lengths: ArraySlice<Int32>, table: Int, from source: Int) {
        timer.measure { recordServed(rows, lengths: lengths, table: table, from: source) }
    }

    private func recordServed(_ rows: ArraySlice<Int32>, lengths: ArraySlice<Int32>, table: Int, from source: Int) {
        if auditThreshold == .max {
            record(rows, table: table, source: source, negative: true)
        } else {
            var start = rows.startIndex
            for (sample, length) in lengths.enumerated() {
                if auditsBag(source: source, table: table, sample: sample) {
                    record(rows[start..<(start + Int(length))], table: table, source: source, negative: true)
                }
                start += Int(length)
            }
        }
        countRows(rows, table: table)
    }

    /// Counts lookups of `table` toward hot rows and reuse: one counter per row, and past
    /// 65,535 (above every reuse bin's bound) a count kept apart for that row.
    func count(_ rows: ArraySlice<Int32>, table: Int) {
        timer.measure { countRows(rows, table: table) }
    }

    private func countRows(_ rows: ArraySlice<Int32>, table: Int) {
        guard !rowCounts[table].isEmpty else { return }
        rowCounts[table].withUnsafeMutableBufferPointer { counts in
            rows.withUnsafeBufferPointer { rows in
                for row in rows {
                    let seen = counts[Int(row)]
                    if seen != .max { counts[Int(row)] = seen &+ 1 } else { countsPastFull[table][row, default: 0] += 1 }
                }
            }
        }
    }

    /// Whether `source`'s bag of `table` for `sample` in this step is audited (see `auditedFraction`).
    @inline(__always)
    private func auditsBag(source: Int, table: Int, sample: Int) -> Bool {
        let place = UInt64(truncatingIfNeeded: step) << 40 ^ UInt64(source) << 30 ^ UInt64(table) << 20 ^ UInt64(sample)
        return auditThreshold == .max || FermatSketch.mix(place ^ auditSeed) < auditThreshold
    }

    private func record(_ rows: ArraySlice<Int32>, table: Int, source: Int, negative: Bool) {
        if log.isFull(adding: rows.count) { insertLog() }
        log.append(rows, base: LookupKey(window: window, table: table, row: 0, source: source).packed, negative: negative)
    }

    /// Inserts the logged requests into the audit sketch and empties the log.
    private func insertLog() {
        for segment in log.segments {
            if keys.count < segment.rows.count { keys = [UInt64](repeating: 0, count: segment.rows.count) }
            keys.withUnsafeMutableBufferPointer { keys in
                log.rows.withUnsafeBufferPointer { rows in
                    for (i, row) in zip(0..., rows[segment.rows]) { keys[i] = segment.base | UInt64(UInt32(bitPattern: row)) }
                }
                audit.insert(UnsafeBufferPointer(rebasing: keys[0..<segment.rows.count]), negative: segment.negative)
            }
        }
        log.removeRequests()
    }

    /// Forgets the closed window: sketches, requests, injected faults, row counts and the timer.
    func startWindow() {
        audit.removeAll()
        hot.removeAll()
        log.removeAll()
        injected.removeAll()
        timer.reset()
        for t in rowCounts.indices where !rowCounts[t].isEmpty {
            rowCounts[t].withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            countsPastFull[t].removeAll()
        }
    }

    /// Adds each counted row to its table's reuse bin in `reuse` and every row with at least
    /// `hotThreshold` lookups, with its count, to the hot-row sketch. Counts below 256 are
    /// tallied by value first, in four interleaved tallies, so that neighbouring rows of equal
    /// count do not wait on each other's increments, and the tallies go to their bins after.
    func countHotRowsAndReuse(into reuse: inout [UInt64]) {
        let threshold = Int(hotThreshold)
        var tallies = [Int](repeating: 0, count: 4 * 256)
        for (table, counts) in rowCounts.enumerated() where !counts.isEmpty {
            let bins = table * ReuseBins.count
            tallies.withUnsafeMutableBufferPointer { tally in
                tally.update(repeating: 0)
                counts.withUnsafeBufferPointer { counts in
                    for (row, c) in counts.enumerated() {
                        let count = Int(c)
                        if count < 256 { tally[(row & 3) << 8 | count] += 1 } else { reuse[bins + ReuseBins.bin(ofCount: count)] += 1 }
                        if count >= threshold {
                            let past = c == .max ? countsPastFull[table][Int32(row), default: 0] : 0
                            hot.insert(LookupKey(window: 0, table: table, row: row, source: 0).packed, count: Int64(count) + past)
                        }
                    }
                }
                for count in 1..<256 {
                    reuse[bins + ReuseBins.bin(ofCount: count)] += UInt64(tally[count] + tally[256 | count] + tally[512 | count] + tally[768 | count])
                }
            }
        }
    }

    /// True after the last step of a window: time to report.
    public func reportsAfter(step: Int) -> Bool { (step + 1) % every == 0 }

    /// Sums every rank's sketches and counts on the coordinator (an allreduce of the request
    /// checksums; one reduce of the hot-row zone, beside the audit zone when the checksums do
    /// not cancel; one of the reuse counts), decodes them and clears this window. Every rank
    /// must call it; the report is on rank 0 only.
    public func report(world: Communicator, topK: Int) throws -> LookupReport? {
        let locate = try world.allreduce(log.checksum, .sum) != 0
        // The reuse counts, then this rank's audit CPU time of the window in nanoseconds.
        var reuse = [UInt64](repeating: 0, count: rowCounts.count * ReuseBins.count + 1)
        var zones = try timer.measure { () throws(SketchError) -> FermatSketch in
            if locate { insertLog() }
            countHotRowsAndReuse(into: &reuse)
            return locate ? try FermatSketch(merging: [audit.sketch(), hot]) : hot
        }
        reuse[reuse.count - 1] = UInt64(timer.cpuSeconds * 1e9)
        try world.reduce(&zones, root: 0)
        let summedReuse = try world.reduce(reuse, .sum, root: 0)
        let injectedKeys = Array(injected.keys), injectedCounts = injectedKeys.map { injected[$0]! }
        let allInjected = faults == nil ? nil : try world.gatherv(injectedKeys, root: 0)
        let allInjectedCounts = faults == nil ? nil : try world.gatherv(injectedCounts, root: 0)
        let closed = window
        let steps = step + 1 - closed * every
        startWindow()
        guard world.isRoot, let summedReuse else { return nil }
        // A window whose checksums cancel lost and duplicated nothing: its audit zone was not sent.
        var lookups = FermatSketch.Decoded(counts: [:], complete: true), heavy = zones
        if locate {
            let parts = try zones.divided(widths: [audit.width, hot.width])
            lookups = parts[0].decode()
            heavy = parts[1]
        }
        var truth: [UInt64: Int64]?
        if let allInjected, let allInjectedCounts {
            truth = [:]
            for (key, count) in zip(allInjected.values, allInjectedCounts.values) { truth![key, default: 0] += count }
            truth = truth!.filter { $0.value != 0 }
        }
        return LookupReport(step: step + 1, window: closed, requests: lookups, hotRows: heavy.decode(), topK: topK,
                            reuseCounts: Array(summedReuse.dropLast()), tables: rowCounts.count, injected: truth,
                            bytesPerRank: 8 + zones.bytes + reuse.count * 8, auditedFraction: auditedFraction,
                            cpuSecondsPerStep: Double(summedReuse.last!) * 1e-9 / Double(world.size * max(steps, 1)))
    }
}

/// The requests a rank audited in the current window, kept until it closes, and the sum of a
/// seeded 64-bit hash of their keys, + for sent and − for served (wrapping). Summed over ranks
/// the hashes cancel unless a request was lost or duplicated; a nonzero difference cancels
/// by chance with probability about 2^-64.
public struct RequestLog {
    /// Consecutive requests of one table from one source: the key with row 0, and where their
    /// rows are in `rows`.
    struct Segment {
        let base: UInt64
        let rows: Range<Int>
        let negative: Bool
    }

    /// Requests kept before they go into the sketch anyway (4 B each): 64 MiB.
    static let capacity = 1 << 24

    public let seed: UInt64
    public private(set) var checksum: UInt64 = 0
    private(set) var rows: [Int32] = []
    private(set) var segments: [Segment] = []

    public init(seed: UInt64) { self.seed = seed }

    func isFull(adding count: Int) -> Bool { !rows.isEmpty && rows.count + count > Self.capacity }

    /// Adds `requests`, rows of the table and source packed in `base` (a `LookupKey` of row 0),
    /// to the checksum (`negative`: served, subtracted) and to the log.
    public mutating func append(_ requests: ArraySlice<Int32>, base: UInt64, negative: Bool) {
        guard !requests.isEmpty else { return }
        var sum: UInt64 = 0
        let salted = base ^ seed
        requests.withUnsafeBufferPointer { requests in
            for row in requests { sum &+= FermatSketch.mix(salted ^ UInt64(UInt32(bitPattern: row))) }
        }
        checksum = negative ? checksum &- sum : checksum &+ sum
        let end = rows.count + requests.count
        // Bags of one table from one source arrive one after another: one segment holds them all.
        if let last = segments.last, last.base == base, last.negative == negative, last.rows.upperBound == rows.count {
            segments[segments.count - 1] = Segment(base: base, rows: last.rows.lowerBound..<end, negative: negative)
        } else {
            segments.append(Segment(base: base, rows: rows.count..<end, negative: negative))
        }
        rows += requests
    }

    /// Forgets the requests (they are in the sketch now) but keeps the checksum.
    mutating func removeRequests() {
        rows.removeAll(keepingCapacity: true)
        segments.removeAll(keepingCapacity: true)
    }

    /// Starts the next window.
    mutating func removeAll() {
        removeRequests()
        checksum = 0
    }
}
