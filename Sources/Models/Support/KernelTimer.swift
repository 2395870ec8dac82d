import Foundation

/// Wall time spent inside one kind of kernel (BLAS, embedding bags, SpMM) since the last reset,
/// so a benchmark can set a layer's time against the raw kernels it calls; and, when asked for,
/// the measuring thread's CPU time inside them (`CLOCK_THREAD_CPUTIME_ID`), which does not grow
/// while the thread waits for a core, as it does when ranks outnumber cores.
public struct KernelTimer: Sendable {
    public private(set) var seconds = 0.0
    /// CPU seconds of the measuring thread inside `measure` (0 unless `countsCPU`).
    public private(set) var cpuSeconds = 0.0
    public let countsCPU: Bool

    public init(countsCPU: Bool = false) { self.countsCPU = countsCPU }

    public mutating func reset() {
        seconds = 0
        cpuSeconds = 0
    }

    /// Counts wall time measured elsewhere, e.g. around work that cannot sit in a closure.
    public mutating func add(_ duration: Duration) { seconds += duration.seconds }

    @inline(__always)
    public mutating func measure<R>(_ body: () throws -> R) rethrows -> R {
        let start = ContinuousClock.now, cpuStart = countsCPU ? Self.threadCPUSeconds() : 0
        defer {
            seconds += (ContinuousClock.now - start).seconds
            if countsCPU { cpuSeconds += Self.threadCPUSeconds() - cpuStart }
        }
        return try body()
    }

    /// CPU seconds the calling thread has used.
    public static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
