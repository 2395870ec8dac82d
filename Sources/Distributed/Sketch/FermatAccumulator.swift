import CPUShim
import Models

/// A FermatSketch being filled with keys of count +1 or −1, the way the lookup audit fills
/// one: each bucket's count, key lanes and fingerprint are summed as plain 64-bit integers,
/// which is exact, and reduced mod p once, when the sketch is taken. An insert is one 256-bit
/// integer add per array, where `FermatSketch.insert` makes five modular additions.
///
/// A bucket is four Int64 lanes (32 bytes, so a bucket never straddles a cache line):
/// count + 2^32 · Σ d·count, Σ a·count, Σ b·count and Σ fingerprint·count, with a, b, d the
/// key's lanes. The count, below 2^31 in magnitude, is the low half read as an Int32, and the
/// rest is Σ d·count. After 2^30 inserts the sums are folded into a sketch mod p and start
/// again from zero, so they never leave those bounds.
public struct FermatAccumulator {
    public let depth: Int
    public let width: Int
    public let seed: UInt64
    private let seeds: [UInt64]
    private var lanes: [SIMD4<Int64>]
    private var inserted = 0
    /// What earlier folds reduced.
    private var folded: FermatSketch
    /// Inserts between folds: at most 2^30, which keeps the sums in bounds.
    public let foldAfter: Int

    /// An empty accumulator of the shape and seed of `FermatSketch(depth:width:seed:)`.
    public init(depth: Int = 3, width: Int, seed: UInt64, foldAfter: Int = 1 << 30) throws(SketchError) {
        guard (1...(1 << 30)).contains(foldAfter) else { throw SketchError("fold interval \(foldAfter) is outside 1...2^30") }
        self.foldAfter = foldAfter
        folded = try FermatSketch(depth: depth, width: width, seed: seed)
        self.depth = depth
        self.width = width
        self.seed = seed
        seeds = folded.seeds
        lanes = [SIMD4<Int64>](repeating: .zero, count: depth * width)
    }

    /// Adds one occurrence of every key of `keys` (`negative`: removes one).
    public mutating func insert(_ keys: UnsafeBufferPointer<UInt64>, negative: Bool = false) {
        var start = 0
        while start < keys.count {
            if inserted == foldAfter { fold() }
            let count = min(keys.count - start, foldAfter - inserted)
            add(UnsafeBufferPointer(rebasing: keys[start..<(start + count)]), sign: negative ? -1 : 1)
            inserted += count
            start += count
        }
    }

    /// Adds `sign` occurrences of every key of `keys`, within the fold's bound.
    private mutating func add(_ keys: UnsafeBufferPointer<UInt64>, sign: Int64) {
        seeds.withUnsafeBufferPointer { seeds in
            lanes.withUnsafeMutableBufferPointer { lanes in
                let base = lanes.baseAddress!
                FermatSketch.forEachKeyInBlocks(keys, seeds: seeds.baseAddress!, depth: depth, width: width) { bucket in
                    mpitrain_prefetch_for_write(base + bucket)
                } update: { key, firstWord, buckets in
                    let (a, b, d, f) = FermatSketch.fields(key, firstWord: firstWord)
                    let values = SIMD4<Int64>(1 | Int64(d) << 32, Int64(a), Int64(b), Int64(f)) &* sign
                    for bucket in buckets { base[bucket] &+= values }
                }
            }
        }
    }

    /// The sketch of every key inserted since the last `removeAll`.
    public func sketch() -> FermatSketch {
        var sketch = folded
        sketch.addResidues(of: lanes)
        return sketch
    }

    public mutating func removeAll() {
        lanes.withUnsafeMutableBufferPointer { $0.update(repeating: .zero) }
        folded.removeAll()
        inserted = 0
    }

    /// Moves the sums into `folded` mod p and starts them again from zero.
    private mutating func fold() {
        folded.addResidues(of: lanes)
        lanes.withUnsafeMutableBufferPointer { $0.update(repeating: .zero) }
        inserted = 0
    }
}

extension FermatSketch {
    /// Adds an accumulator's buckets, reduced mod p, bucket by bucket.
    fileprivate mutating func addResidues(of lanes: [SIMD4<Int64>]) {
        withUnsafeMutableCells { cells in
            for (bucket, sums) in lanes.enumerated() where sums != .zero {
                let count = Int64(Int32(truncatingIfNeeded: sums[0]))
                let field = cells.baseAddress! + bucket * FermatSketch.fieldsPerBucket
                field[0] = ModPrime.add(field[0], ModPrime.residue(count))
                field[1] = ModPrime.add(field[1], ModPrime.residue(sums[1]))
                field[2] = ModPrime.add(field[2], ModPrime.residue(sums[2]))
                field[3] = ModPrime.add(field[3], ModPrime.residue((sums[0] &- count) >> 32))
                field[4] = ModPrime.add(field[4], ModPrime.residue(sums[3]))
            }
        }
    }
}
