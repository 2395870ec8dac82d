import Models
import Testing

/// The counter hash behind dropout masks and initial embedding values: eight lanes at once give
/// the scalar's values, so a vectorised mask is the same mask.
@Suite struct CounterHashTests {
    @Test(arguments: [0, 1, 0x9e37_79b9_7f4a_7c15, .max] as [UInt64])
    func eightLanesEqualEightScalarHashes(key: UInt64) {
        for first in [0, 1, 41, 1 << 33, .max - 7] as [UInt64] {
            let counters = SIMD8<UInt64>(repeating: first) &+ SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
            let lanes = counterHash(key, counters)
            for k in 0..<8 { #expect(lanes[k] == counterHash(key, counters[k]), "key \(key), counter \(counters[k])") }
        }
    }
}
