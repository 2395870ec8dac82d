/// Wall time spent inside one kind of kernel (BLAS, embedding bags, SpMM) since the last reset,
/// so a benchmark can set a layer's time against the raw kernels it calls.
public struct KernelTimer: Sendable {
    public private(set) var seconds = 0.0

    public init() {}

    public mutating func reset() { seconds = 0 }

    /// Counts time measured elsewhere, e.g. around work that cannot sit in a closure.
    public mutating func add(_ duration: Duration) { seconds += duration.seconds }

    @inline(__always)
    public mutating func measure<R>(_ body: () throws -> R) rethrows -> R {
        let start = ContinuousClock.now
        defer { seconds += (ContinuousClock.now - start).seconds }
        return try body()
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
