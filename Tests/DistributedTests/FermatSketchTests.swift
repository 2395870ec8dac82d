import Distributed
import Models
import Testing

/// FermatSketch laws and decoding, on one rank (sums over ranks are the `sketch` selftest).
struct FermatSketchTests {
    /// `count` distinct random keys with signed counts in ±1...±5.
    static func multiset(_ count: Int, seed: UInt64) -> [UInt64: Int64] {
        var random = SplitMix64(seed: seed)
        var keys: [UInt64: Int64] = [:]
        while keys.count < count {
            let magnitude = Int64(random.nextInt(below: 5) + 1)
            keys[random.next()] = random.next() & 1 == 0 ? magnitude : -magnitude
        }
        return keys
    }

    static func sketch(of keys: [UInt64: Int64], depth: Int = 3, width: Int, seed: UInt64 = 5) throws -> FermatSketch {
        var sketch = try FermatSketch(depth: depth, width: width, seed: seed)
        for (key, count) in keys { sketch.insert(key, count: count) }
        return sketch
    }

    @Test func modularArithmeticAgreesWithDivision() {
        var random = SplitMix64(seed: 1)
        let p = UInt64(ModPrime.p)
        for _ in 0..<10_000 {
            let x = random.next()
            #expect(UInt64(ModPrime.reduce(x)) == x % p)
            let a = UInt32(random.next() % (p - 1) + 1)
            #expect(ModPrime.multiply(a, ModPrime.inverse(a)) == 1)
        }
        #expect(ModPrime.signed(ModPrime.residue(-7)) == -7)
        #expect(ModPrime.residue(-1) == ModPrime.p - 1)
    }

    @Test func addSubtractAndDivideLaws() throws {
        let a = Self.multiset(300, seed: 2), b = Self.multiset(200, seed: 3)
        let sa = try Self.sketch(of: a, width: 1024), sb = try Self.sketch(of: b, width: 1024)
        var union = a
        for (key, count) in b { union[key, default: 0] += count }
        var ab = sa
        try ab.add(sb)
        var ba = sb
        try ba.add(sa)
        #expect(ab == ba)
        #expect(ab == (try Self.sketch(of: union.filter { $0.value != 0 }, width: 1024)))
        var back = ab
        try back.subtract(sb)
        #expect(back == sa)
        try back.subtract(sa)
        #expect(back.isEmpty)

        let zones = try ab.divided(widths: [100, 900, 24])
        #expect(zones.map(\.width) == [100, 900, 24])
        #expect(try FermatSketch(merging: zones) == ab)
    }

    @Test func zonesAreSketchesOfTheirOwn() throws {
        let audit = Self.multiset(50, seed: 4), hot = Self.multiset(300, seed: 5)
        let merged = try FermatSketch(merging: [Self.sketch(of: audit, width: 128), Self.sketch(of: hot, width: 512)])
        let zones = try merged.divided(widths: [128, 512])
        #expect(zones[0].decode() == .init(counts: audit, complete: true))
        #expect(zones[1].decode() == .init(counts: hot, complete: true))
    }

    @Test(arguments: [3, 4])
    func decodesRandomMultisetsWithSignedCounts(depth: Int) throws {
        for seed in UInt64(10)..<UInt64(20) {
            let keys = Self.multiset(1000, seed: seed)
            let decoded = try Self.sketch(of: keys, depth: depth, width: 1000 * 3 / (2 * depth) + 1, seed: seed).decode()
            #expect(decoded.complete)
            #expect(decoded.counts == keys)
        }
    }

    @Test func cancellingInsertsLeaveNothing() throws {
        var sketch = try FermatSketch(width: 64, seed: 1)
        for key in UInt64(0)..<100 { sketch.insert(key, count: 3) }
        for key in UInt64(0)..<100 { sketch.insert(key, count: -3) }
        #expect(sketch.isEmpty)
        #expect(sketch.decode() == .init(counts: [:], complete: true))
    }

    /// Overloaded sketches must say they failed; a decode that says complete must be right.
    @Test func decodeFailureIsDetectedNeverMisreported() throws {
        var completes = 0, failures = 0
        for seed in UInt64(100)..<UInt64(160) {
            let keys = Self.multiset(400, seed: seed)
            let load = 0.9 + Double(seed % 6) * 0.1   // 0.9 ... 1.4 buckets per key
            let decoded = try Self.sketch(of: keys, width: Int(load * 400 / 3), seed: seed).decode()
            if decoded.complete {
                completes += 1
                #expect(decoded.counts == keys, "seed \(seed): a complete decode must be exact")
            } else {
                failures += 1
            }
        }
        #expect(completes > 0 && failures > 0, "loads around the threshold should both succeed and fail")
        let overloaded = try Self.sketch(of: Self.multiset(3000, seed: 9), width: 500).decode()
        #expect(!overloaded.complete)
    }

    @Test func serialisationRoundTripsAndRejectsBadBytes() throws {
        let sketch = try Self.sketch(of: Self.multiset(50, seed: 6), width: 100, seed: 77)
        let bytes = sketch.serialized()
        #expect(try FermatSketch(serialized: bytes) == sketch)
        #expect(throws: SketchError("truncated sketch: 100 bytes, a 3×100, seed 77 sketch has \(bytes.count)")) {
            try FermatSketch(serialized: Array(bytes[0..<100]))
        }
        var version = bytes
        version[4] = 9
        #expect(throws: SketchError("sketch format version 9; this build reads version 1")) { try FermatSketch(serialized: version) }
        #expect(throws: SketchError("not a FermatSketch: the bytes do not start with FSKT")) { try FermatSketch(serialized: [UInt8](repeating: 0, count: 40)) }
        var corrupt = bytes
        corrupt.replaceSubrange(24..<28, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: SketchError("corrupt sketch: field 0 is 4294967295, not below p")) { try FermatSketch(serialized: corrupt) }
    }

    @Test func mismatchedSketchesAreRefused() throws {
        var a = try FermatSketch(width: 100, seed: 1)
        #expect(throws: SketchError("cannot add a sketch of 3×100, seed 2 and one of 3×100, seed 1")) {
            try a.add(try FermatSketch(width: 100, seed: 2))
        }
        #expect(throws: SketchError("cannot subtract a sketch of 4×100, seed 1 and one of 3×100, seed 1")) {
            try a.subtract(try FermatSketch(depth: 4, width: 100, seed: 1))
        }
        #expect(throws: SketchError("zone widths [50, 40] do not split width 100 into positive parts")) {
            try a.divided(widths: [50, 40])
        }
        #expect(throws: SketchError("width 0 is outside 1...268435456")) { try FermatSketch(width: 0, seed: 1) }
    }

    /// The accumulator's plain 64-bit sums, reduced once, give the very sketch that modular
    /// inserts give, folding or not, and it empties as the sketch does.
    @Test(arguments: [1 << 30, 1000])
    func accumulatorEqualsModularInserts(foldAfter: Int) throws {
        var random = SplitMix64(seed: 9)
        let keys = (0..<5000).map { _ in random.next() }, removed = Array(keys[1000..<4500])
        var sketch = try FermatSketch(width: 1024, seed: 3)
        var accumulator = try FermatAccumulator(width: 1024, seed: 3, foldAfter: foldAfter)
        for _ in 0..<3 {
            keys.withUnsafeBufferPointer { sketch.insert($0); accumulator.insert($0) }
            removed.withUnsafeBufferPointer { sketch.insert($0, count: -1); accumulator.insert($0, negative: true) }
        }
        #expect(accumulator.sketch() == sketch)
        let decoded = accumulator.sketch().decode()
        #expect(decoded.complete && decoded.counts.count == 1500 && decoded.counts.values.allSatisfy { $0 == 3 })
        accumulator.removeAll()
        #expect(accumulator.sketch().isEmpty)
        #expect(throws: SketchError("fold interval 0 is outside 1...2^30")) { try FermatAccumulator(width: 8, seed: 1, foldAfter: 0) }
    }
}
