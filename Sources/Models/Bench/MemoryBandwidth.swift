/// The machine's memory bandwidth as a STREAM-style copy (b[i] = a[i] over arrays far larger
/// than the caches), counting bytes read plus bytes written, best of `repeats`.
public enum MemoryBandwidth {
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
}
