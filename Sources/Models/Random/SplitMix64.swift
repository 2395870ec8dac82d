import Foundation

/// A portable 64-bit generator (SplitMix64): the same seed gives the same stream on every
/// platform, rank and Swift version.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one purpose ("init", "data", "dropout", ...) derived from a seed, so a new
    /// draw in one stream never shifts another.
    public init(seed: UInt64, stream: String, index: UInt64 = 0) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over the stream name: portable, unlike Hasher.
        for byte in stream.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        var mixer = SplitMix64(seed: seed ^ h)
        let a = mixer.next()
        var mixer2 = SplitMix64(seed: a ^ (index &* 0x9e37_79b9_7f4a_7c15))
        state = mixer2.next()
    }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 24 bits.
    @inlinable
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1), from the top 53 bits.
    @inlinable
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<bound without modulo bias (Lemire's multiply-shift with rejection).
    @inlinable
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Standard normal by Box-Muller (one of the pair; simple and portable).
    @inlinable
    public mutating func nextGaussian() -> Double {
        let u1 = max(nextDouble(), 0x1p-53)
        let u2 = nextDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
