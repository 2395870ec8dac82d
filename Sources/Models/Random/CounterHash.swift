/// A stateless random function of (key, counter): the SplitMix64 finaliser over key + counter·φ.
/// Values that must not depend on who computes them or in what order (a dropout mask element,
/// an embedding row's initial value under any sharding) come from here.
@inline(__always)
public func counterHash(_ key: UInt64, _ counter: UInt64) -> UInt64 {
    var z = key &+ counter &* 0x9e37_79b9_7f4a_7c15
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
}

/// `counterHash` of eight counters at once, lane for lane the same values.
@inline(__always)
public func counterHash(_ key: UInt64, _ counters: SIMD8<UInt64>) -> SIMD8<UInt64> {
    var z = SIMD8(repeating: key) &+ counters &* 0x9e37_79b9_7f4a_7c15
    z = (z ^ (z &>> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z &>> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z &>> 31)
}
