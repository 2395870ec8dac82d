import CPUShim
import Models

/// An invertible sketch of a multiset of 64-bit keys with signed counts (FermatSketch, from
/// ChameleMon, SIGCOMM 2023).
///
/// `depth` arrays of `width` buckets; a key lands in one bucket per array, chosen by a seeded,
/// portable hash. Each bucket holds, modulo p = 2^32 − 5, the count and, per field of the key
/// (three 31-bit lanes and a 31-bit fingerprint), the sum of field × count. Sketches of the
/// same shape and seed add and subtract bucket-wise, so a sum over ranks is the sketch of the
/// union. Decoding peels pure buckets: a bucket holding one key gives key = IDsum × count^(p−2),
/// accepted only when the fingerprint matches and the key hashes back to that bucket.
public struct FermatSketch: Equatable, Sendable {
    public static let formatVersion: UInt32 = 1
    /// UInt32 fields per bucket: count, three key lanes, fingerprint.
    public static let fieldsPerBucket = 5

    public let depth: Int
    public let width: Int
    public let seed: UInt64
    /// Bucket fields, array-major: bucket (row, column) at `(row · width + column) · 5`.
    public private(set) var cells: [UInt32]
    /// Seeds of the key's hash words, one per pair of 32-bit halves, derived from `seed`.
    let seeds: [UInt64]

    public init(depth: Int = 3, width: Int, seed: UInt64) throws(SketchError) {
        guard (1...8).contains(depth) else { throw SketchError("depth \(depth) is outside 1...8") }
        guard width >= 1, width <= 1 << 28 else { throw SketchError("width \(width) is outside 1...\(1 << 28)") }
        self.depth = depth
        self.width = width
        self.seed = seed
        var seeds = SplitMix64(seed: seed, stream: "fermat-sketch")
        self.seeds = (0..<(depth + 2) / 2).map { _ in seeds.next() }
        cells = [UInt32](repeating: 0, count: depth * width * Self.fieldsPerBucket)
    }

    /// Same shape, seed and buckets (the hash seeds follow from `seed`).
    public static func == (a: FermatSketch, b: FermatSketch) -> Bool {
        a.depth == b.depth && a.width == b.width && a.seed == b.seed && a.cells == b.cells
    }

    /// "3×1024, seed 7": how errors name a sketch.
    public var shape: String { "\(depth)×\(width), seed \(seed)" }

    /// Bytes of bucket memory (what an exchange moves per rank).
    public var bytes: Int { cells.count * MemoryLayout<UInt32>.size }

    /// True when every count and every lane of every bucket is zero.
    public var isEmpty: Bool { cells.allSatisfy { $0 == 0 } }

    public mutating func removeAll() {
        cells.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// The bucket fields, to change in place (residues below p in, residues below p out).
    mutating func withUnsafeMutableCells<R>(_ body: (UnsafeMutableBufferPointer<UInt32>) -> R) -> R {
        cells.withUnsafeMutableBufferPointer { body($0) }
    }

    // MARK: - Hashing

    /// The 32-bit hash halves of `key`: half 0's top 31 bits are the fingerprint, half r + 1
    /// picks the column in array r. Halves come in pairs from one seeded 64-bit mix each.
    @inline(__always)
    static func hashWord(_ key: UInt64, _ seeds: UnsafePointer<UInt64>, pair: Int) -> UInt64 {
        mix(key ^ seeds[pair])
    }

    /// The field values of `key`: three lanes below 2^31 (the last holds two bits) and the
    /// fingerprint from `firstWord`; all below p.
    @inline(__always)
    static func fields(_ key: UInt64, firstWord: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        (UInt32(key & 0x7FFF_FFFF), UInt32((key >> 31) & 0x7FFF_FFFF), UInt32(key >> 62), UInt32(firstWord >> 33))
    }

    /// Calls `body(row, column)` for every array, given the key's first hash word.
    @inline(__always)
    static func forEachColumn(_ key: UInt64, firstWord: UInt64, seeds: UnsafePointer<UInt64>, depth: Int, width: Int,
                                      _ body: (Int, Int) -> Void) {
        var word = firstWord
        for row in 0..<depth {
            let half = row + 1
            if half & 1 == 0 { word = hashWord(key, seeds, pair: half >> 1) }
            let bits = half & 1 == 0 ? word >> 32 : word & 0xFFFF_FFFF
            body(row, Int((bits &* UInt64(width)) >> 32))
        }
    }

    /// Combines a bucket's five fields with `values` by `op` (add to insert, subtract to peel).
    @inline(__always)
    private static func update(_ bucket: UnsafeMutablePointer<UInt32>, _ values: (UInt32, UInt32, UInt32, UInt32, UInt32),
                               _ op: (UInt32, UInt32) -> UInt32) {
        bucket[0] = op(bucket[0], values.0)
        bucket[1] = op(bucket[1], values.1)
        bucket[2] = op(bucket[2], values.2)
        bucket[3] = op(bucket[3], values.3)
        bucket[4] = op(bucket[4], values.4)
    }

    /// A 64-bit finaliser (Stafford's variant 13, as SplitMix64's): portable across processes.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    // MARK: - Insert

    /// Adds `count` (negative to remove) occurrences of `key`.
    public mutating func insert(_ key: UInt64, count: Int64 = 1) {
        withUnsafePointer(to: key) { insert(UnsafeBufferPointer(start: $0, count: 1), count: count) }
    }

    /// Adds `count` occurrences of every key of `keys`.
    public mutating func insert(_ keys: UnsafeBufferPointer<UInt64>, count: Int64 = 1) {
        let c = ModPrime.residue(count)
        guard c != 0 else { return }
        let unit = count == 1, negativeUnit = count == -1
        seeds.withUnsafeBufferPointer { seeds in
            cells.withUnsafeMutableBufferPointer { cells in
                let base = cells.baseAddress!
                Self.forEachKeyInBlocks(keys, seeds: seeds.baseAddress!, depth: depth, width: width) { bucket in
                    mpitrain_prefetch_for_write(base + bucket * Self.fieldsPerBucket)
                } update: { key, firstWord, buckets in
                    var (a, b, d, f) = Self.fields(key, firstWord: firstWord)
                    if negativeUnit {
                        (a, b, d, f) = (ModPrime.subtract(0, a), ModPrime.subtract(0, b), ModPrime.subtract(0, d), ModPrime.subtract(0, f))
                    } else if !unit {
                        (a, b, d, f) = (ModPrime.multiply(a, c), ModPrime.multiply(b, c), ModPrime.multiply(d, c), ModPrime.multiply(f, c))
                    }
                    for row in 0..<buckets.count { Self.update(base + buckets[row] * Self.fieldsPerBucket, (c, a, b, d, f), ModPrime.add) }
                }
            }
        }
    }

    /// Visits `keys` in blocks of 16: first every bucket of a block is located (as `row ·
    /// width + column`) and handed to `prefetch`, then `update` sees each key with its first
    /// hash word and its `depth` buckets, so the random bucket reads overlap instead of
    /// waiting one by one.
    @inline(__always)
    static func forEachKeyInBlocks(_ keys: UnsafeBufferPointer<UInt64>, seeds: UnsafePointer<UInt64>, depth: Int, width: Int,
                                   prefetch: (Int) -> Void, update: (UInt64, UInt64, UnsafeBufferPointer<Int>) -> Void) {
        let block = 16
        withUnsafeTemporaryAllocation(of: Int.self, capacity: block * depth) { buckets in
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: block) { firstWords in
                for blockStart in stride(from: 0, to: keys.count, by: block) {
                    let blockKeys = blockStart..<min(blockStart + block, keys.count)
                    for (i, key) in zip(0..., keys[blockKeys]) {
                        let first = hashWord(key, seeds, pair: 0)
                        firstWords[i] = first
                        forEachColumn(key, firstWord: first, seeds: seeds, depth: depth, width: width) { row, column in
                            buckets[i * depth + row] = row * width + column
                            prefetch(row * width + column)
                        }
                    }
                    for (i, key) in zip(0..., keys[blockKeys]) {
                        update(key, firstWords[i], UnsafeBufferPointer(rebasing: buckets[i * depth ..< (i + 1) * depth]))
                    }
                }
            }
        }
    }

    // MARK: - Algebra

    /// Throws unless `other` has this sketch's depth, width and seed (and so hashes alike).
    public func requireCompatible(_ other: FermatSketch, _ operation: String) throws(SketchError) {
        guard depth == other.depth, width == other.width, seed == other.seed else {
            throw SketchError("cannot \(operation) a sketch of \(other.shape) and one of \(shape)")
        }
    }

    /// Adds `other` bucket-wise: the sketch of both multisets.
    public mutating func add(_ other: FermatSketch) throws(SketchError) {
        try requireCompatible(other, "add")
        combine(other, ModPrime.add)
    }

    /// Subtracts `other` bucket-wise: the sketch of the signed difference.
    public mutating func subtract(_ other: FermatSketch) throws(SketchError) {
        try requireCompatible(other, "subtract")
        combine(other, ModPrime.subtract)
    }

    private mutating func combine(_ other: FermatSketch, _ op: (UInt32, UInt32) -> UInt32) {
        other.cells.withUnsafeBufferPointer { source in
            cells.withUnsafeMutableBufferPointer { target in
                for i in target.indices { target[i] = op(target[i], source[i]) }
            }
        }
    }

    /// Splits every array's buckets into consecutive zones of `widths` (summing to `width`):
    /// independent sketches, each sized for its own task, that `init(merging:)` joins back.
    public func divided(widths: [Int]) throws(SketchError) -> [FermatSketch] {
        guard !widths.isEmpty, widths.allSatisfy({ $0 >= 1 }), widths.reduce(0, +) == width else {
            throw SketchError("zone widths \(widths) do not split width \(width) into positive parts")
        }
        var zones: [FermatSketch] = []
        var start = 0
        for zoneWidth in widths {
            var zone = try FermatSketch(depth: depth, width: zoneWidth, seed: seed)
            for row in 0..<depth {
                let from = (row * width + start) * Self.fieldsPerBucket, count = zoneWidth * Self.fieldsPerBucket
                zone.cells.replaceSubrange(row * count..<(row + 1) * count, with: cells[from..<(from + count)])
            }
            zones.append(zone)
            start += zoneWidth
        }
        return zones
    }

    /// One sketch whose arrays are the zones' arrays side by side (the inverse of `divided`).
    public init(merging zones: [FermatSketch]) throws(SketchError) {
        guard let first = zones.first else { throw SketchError("no zones to merge") }
        for zone in zones where zone.depth != first.depth || zone.seed != first.seed {
            throw SketchError("cannot merge a zone of \(zone.shape) with one of \(first.shape)")
        }
        try self.init(depth: first.depth, width: zones.reduce(0) { $0 + $1.width }, seed: first.seed)
        var at = 0
        for row in 0..<depth {
            for zone in zones {
                let count = zone.width * Self.fieldsPerBucket
                cells.replaceSubrange(at..<(at + count), with: zone.cells[row * count..<(row + 1) * count])
                at += count
            }
        }
    }

    // MARK: - Decode

    /// What peeling recovered: keys with their nonzero signed counts, and whether every bucket
    /// was emptied. An incomplete decode still lists what it found, but those keys are not the
    /// whole multiset.
    public struct Decoded: Equatable, Sendable {
        public var counts: [UInt64: Int64]
        public var complete: Bool

        public init(counts: [UInt64: Int64], complete: Bool) {
            self.counts = counts
            self.complete = complete
        }
    }

    /// Peels pure buckets until none is left or `maxExtractions` keys have been taken out.
    public func decode(maxExtractions: Int? = nil) -> Decoded {
        var work = cells
        var counts: [UInt64: Int64] = [:]
        let cap = maxExtractions ?? depth * width * 4, width = width, depth = depth
        var extractions = 0
        var pending = Array(0..<(depth * width))
        var queued = [Bool](repeating: true, count: depth * width)
        seeds.withUnsafeBufferPointer { seeds in
            let seeds = seeds.baseAddress!
            work.withUnsafeMutableBufferPointer { work in
                let base = work.baseAddress!
                while let bucketIndex = pending.popLast(), extractions < cap {
                    queued[bucketIndex] = false
                    let bucket = base + bucketIndex * Self.fieldsPerBucket
                    let c = bucket[0]
                    guard c != 0, let (key, first) = Self.pureKey(bucket, row: bucketIndex / width, column: bucketIndex % width,
                                                                  seeds: seeds, width: width) else { continue }
                    let (a, b, d, f) = Self.fields(key, firstWord: first)
                    let values = (c, ModPrime.multiply(a, c), ModPrime.multiply(b, c), ModPrime.multiply(d, c), ModPrime.multiply(f, c))
                    Self.forEachColumn(key, firstWord: first, seeds: seeds, depth: depth, width: width) { row, column in
                        let index = row * width + column
                        Self.update(base + index * Self.fieldsPerBucket, values, ModPrime.subtract)
                        if !queued[index] {
                            queued[index] = true
                            pending.append(index)
                        }
                    }
                    let total = counts[key, default: 0] + ModPrime.signed(c)
                    counts[key] = total == 0 ? nil : total
                    extractions += 1
                }
            }
        }
        return Decoded(counts: counts, complete: work.allSatisfy { $0 == 0 })
    }

    /// The key a bucket holds if it holds exactly one, with its first hash word: the lanes
    /// divided by the count must form a key whose fingerprint matches and which hashes to this
    /// bucket.
    private static func pureKey(_ bucket: UnsafeMutablePointer<UInt32>, row: Int, column: Int,
                                seeds: UnsafePointer<UInt64>, width: Int) -> (UInt64, UInt64)? {
        let inverse = ModPrime.inverse(bucket[0])
        let a = ModPrime.multiply(bucket[1], inverse), b = ModPrime.multiply(bucket[2], inverse)
        let d = ModPrime.multiply(bucket[3], inverse)
        guard a < 1 << 31, b < 1 << 31, d < 4 else { return nil }
        let key = UInt64(a) | UInt64(b) << 31 | UInt64(d) << 62
        let first = hashWord(key, seeds, pair: 0)
        guard fields(key, firstWord: first).3 == ModPrime.multiply(bucket[4], inverse) else { return nil }
        var hashed = -1
        forEachColumn(key, firstWord: first, seeds: seeds, depth: row + 1, width: width) { _, c in hashed = c }
        return hashed == column ? (key, first) : nil
    }

    // MARK: - Serialisation

    private static let magic: [UInt8] = Array("FSKT".utf8)
    private static let headerBytes = 4 + 4 + 4 + 4 + 8

    /// Little-endian bytes: "FSKT", format version, depth, width, seed, then every field.
    public func serialized() -> [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.headerBytes + self.bytes)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(Self.formatVersion)
        append(UInt32(depth))
        append(UInt32(width))
        append(seed)
        for field in cells { append(field) }
        return bytes
    }

    /// Reads `serialized()` bytes; throws on another format, a truncated buffer or a field
    /// that is not a residue.
    public init(serialized bytes: [UInt8]) throws(SketchError) {
        guard bytes.count >= Self.headerBytes else {
            throw SketchError("truncated sketch: \(bytes.count) bytes, shorter than the \(Self.headerBytes)-byte header")
        }
        guard Array(bytes[0..<4]) == Self.magic else { throw SketchError("not a FermatSketch: the bytes do not start with FSKT") }
        func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            var value: T = 0
            withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<(offset + MemoryLayout<T>.size)]) }
            return T(littleEndian: value)
        }
        let version = read(UInt32.self, at: 4)
        guard version == Self.formatVersion else {
            throw SketchError("sketch format version \(version); this build reads version \(Self.formatVersion)")
        }
        try self.init(depth: Int(read(UInt32.self, at: 8)), width: Int(read(UInt32.self, at: 12)), seed: read(UInt64.self, at: 16))
        let expected = Self.headerBytes + self.bytes
        guard bytes.count == expected else {
            throw SketchError("truncated sketch: \(bytes.count) bytes, a \(shape) sketch has \(expected)")
        }
        for i in cells.indices {
            cells[i] = read(UInt32.self, at: Self.headerBytes + 4 * i)
            guard cells[i] < ModPrime.p else { throw SketchError("corrupt sketch: field \(i) is \(cells[i]), not below p") }
        }
    }

    /// Replaces the bucket fields with `fields` (an exchange's result): same count, all below p.
    mutating func replaceCells(with fields: UnsafeBufferPointer<UInt32>) {
        precondition(fields.count == cells.count && fields.allSatisfy { $0 < ModPrime.p }, "fields of another shape")
        cells.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: fields) }
    }
}

/// A sketch operation refused: another shape, seed or format, or bytes that are not a sketch.
public struct SketchError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
