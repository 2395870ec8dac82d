/// The machine's memory bandwidth: a STREAM-style copy, and the random gather an embedding
/// lookup makes.
public enum MemoryBandwidth {
    /// A copy (b[i] = a[i] over arrays far larger than the caches), counting bytes read plus
    /// bytes written, best of `repeats`.
    public static func copyBytesPerSecond(megabytes: Int = 256, repeats: Int = 5) -> Double {
        let count = megabytes << 18
        let a = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer {
            a.deallocate()
            b.deallocate()
        }
        a.initialize(repeating: 1, count: count)
        b.initialize(repeating: 0, count: count)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = ContinuousClock.now
            b.update(from: a, count: count)
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        return Double(2 * count * MemoryLayout<Float>.size) / best
    }

    /// Random reads of `rowBytes`-byte rows (64: one cache line) at seeded positions in a
    /// table of `megabytes`, summed as a pooling would, each row requested `prefetchDistance`
    /// reads ahead and summed in registers: what a well-made gather of such rows reaches, the
    /// limit an embedding kernel is measured against. Bytes read per second, best of `repeats`.
    public static func randomGatherBytesPerSecond(megabytes: Int = 512, rowBytes: Int = 64, reads: Int = 1 << 22, repeats: Int = 3,
                                                  prefetchDistance: Int = 16) -> Double {
        typealias Lanes = SIMD16<Float>
        let width = max(rowBytes / MemoryLayout<Float>.size, Lanes.scalarCount) / Lanes.scalarCount * Lanes.scalarCount
        let rows = max((megabytes << 20) / (width * MemoryLayout<Float>.size), 1)
        let table = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let positions = UnsafeMutablePointer<Int>.allocate(capacity: reads)
        defer {
            table.deallocate()
            positions.deallocate()
        }
        table.initialize(repeating: 1, count: rows * width)
        var random = SplitMix64(seed: 0, stream: "random gather")
        for i in 0..<reads { positions[i] = random.nextInt(below: rows) * width }
        var best = Double.infinity, total = Lanes()
        for _ in 0..<repeats {
            var sum = Lanes()
            let start = ContinuousClock.now
            for i in 0..<reads {
                if i + prefetchDistance < reads { prefetchRow(table + positions[i + prefetchDistance], width: width) }
                let row = UnsafeRawPointer(table + positions[i])
                var c = 0
                while c < width {
                    sum += row.loadUnaligned(fromByteOffset: c * MemoryLayout<Float>.size, as: Lanes.self)
                    c += Lanes.scalarCount
                }
            }
            best = min(best, (ContinuousClock.now - start).seconds)
            total += sum
        }
        // Every lane of the sum is read, so no load can be dropped.
        guard total.sum() > 0 else { return 0 }
        return Double(reads * width * MemoryLayout<Float>.size) / best
    }
}
