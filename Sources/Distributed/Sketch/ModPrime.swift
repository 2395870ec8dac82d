/// Arithmetic modulo the FermatSketch prime p = 2^32 − 5, on values already below p.
///
/// Reduction uses 2^32 ≡ 5 (mod p): a 64-bit value hi·2^32 + lo folds to 5·hi + lo, twice, and
/// one conditional subtraction finishes it; no division on the insert path.
public enum ModPrime {
    public static let p: UInt32 = 4_294_967_291

    @inlinable @inline(__always)
    public static func reduce(_ x: UInt64) -> UInt32 {
        var y = (x >> 32) &* 5 &+ (x & 0xFFFF_FFFF)  // < 5·2^32 + 2^32
        y = (y >> 32) &* 5 &+ (y & 0xFFFF_FFFF)      // < 2^32 + 30
        return UInt32(y >= UInt64(p) ? y &- UInt64(p) : y)
    }

    @inlinable @inline(__always)
    public static func add(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let s = UInt64(a) &+ UInt64(b)
        return UInt32(s >= UInt64(p) ? s &- UInt64(p) : s)
    }

    @inlinable @inline(__always)
    public static func subtract(_ a: UInt32, _ b: UInt32) -> UInt32 {
        a >= b ? a &- b : a &+ (p &- b)
    }

    @inlinable @inline(__always)
    public static func multiply(_ a: UInt32, _ b: UInt32) -> UInt32 {
        reduce(UInt64(a) &* UInt64(b))
    }

    /// a^(p−2) = a⁻¹ for a ≠ 0 (Fermat's little theorem).
    public static func inverse(_ a: UInt32) -> UInt32 {
        if a == 1 || a == p - 1 { return a }  // ±1, the common count, is its own inverse
        var result: UInt32 = 1, base = a, exponent = p - 2
        while exponent > 0 {
            if exponent & 1 == 1 { result = multiply(result, base) }
            base = multiply(base, base)
            exponent >>= 1
        }
        return result
    }

    /// A signed count as a residue: −1 is p − 1.
    @inlinable @inline(__always)
    public static func residue(_ count: Int64) -> UInt32 {
        let r = count % Int64(p)
        return UInt32(r < 0 ? r + Int64(p) : r)
    }

    /// The residue read back as a signed count in (−p/2, p/2].
    @inlinable @inline(__always)
    public static func signed(_ residue: UInt32) -> Int64 {
        residue > p / 2 ? Int64(residue) - Int64(p) : Int64(residue)
    }
}
