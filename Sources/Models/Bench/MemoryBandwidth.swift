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
    /// table of `megabytes`, far larger than the caches, summed as a pooling would: the floor
    /// an embedding gather of such rows can reach. Bytes read per second, best of `repeats`.
    public static func randomGatherBytesPerSecond(megabytes: Int = 512, rowBytes: Int = 64, reads: Int = 1 << 22, repeats: Int = 3) -> Double {
        let width = max(rowBytes / MemoryLayout<Float>.size, 1), rows = (megabytes << 20) / (width * MemoryLayout<Float>.size)
        let table = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)
        let positions = UnsafeMutablePointer<Int>.allocate(capacity: reads)
        let sum = UnsafeMutablePointer<Float>.allocate(capacity: width)
        defer {
            table.deallocate()
            positions.deallocate()
            sum.deallocate()
        }
        table.initialize(repeating: 1, count: rows * width)
        var random = SplitMix64(seed: 0, stream: "random gather")
        for i in 0..<reads { positions[i] = random.nextInt(below: rows) * width }
        var best = Double.infinity
        for _ in 0..<repeats {
            sum.initialize(repeating: 0, count: width)
            let start = ContinuousClock.now
            for i in 0..<reads {
                let row = table + positions[i]
                for j in 0..<width { sum[j] += row[j] }
            }
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        // Every lane of the sum is read, so no load can be dropped.
        guard (0..<width).reduce(0, { $0 + sum[$1] }) > 0 else { return 0 }
        return Double(reads * width * MemoryLayout<Float>.size) / best
    }
}
