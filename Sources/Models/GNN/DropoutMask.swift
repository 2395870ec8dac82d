/// Dropout as a pure function of (seed, epoch, layer, node, column): every rank and every chunk
/// order draws the same mask for the same element, so a pipelined run can match a single-rank one.
struct DropoutMask {
    let probability: Float
    let key: UInt64
    let scale: Float

    init(probability: Float, seed: UInt64, epoch: Int, layer: Int) {
        self.probability = probability
        var mixer = SplitMix64(seed: seed, stream: "dropout", index: UInt64(epoch) << 16 | UInt64(layer))
        key = mixer.next()
        scale = probability < 1 ? 1 / (1 - probability) : 0
    }

    var isActive: Bool { probability > 0 }

    /// out[r] = x[r] · mask / (1 - p) for the rows of `nodes` (original node ids give the keys).
    /// Kept elements have hash bits at or above this.
    var threshold: UInt32 { UInt32(min(Double(probability) * 4_294_967_296.0, 4_294_967_295.0)) }

    func apply(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Range<Int>, width: Int,
               originalIDs: UnsafePointer<Int32>) {
        let threshold = self.threshold
        for row in rows {
            let base = UInt64(UInt32(bitPattern: originalIDs[row])) &* UInt64(width)
            let o = out + row * width, i = x + row * width
            var c = 0
            if base & 1 == 0 {
                // Element pairs (even, odd) share one hash: its low and high halves.
                while c + 2 <= width {
                    let h = counterHash(key, (base &+ UInt64(c)) >> 1)
                    o[c] = UInt32(truncatingIfNeeded: h) >= threshold ? i[c] * scale : 0
                    o[c + 1] = UInt32(truncatingIfNeeded: h >> 32) >= threshold ? i[c + 1] * scale : 0
                    c += 2
                }
            }
            while c < width {
                o[c] = bits(base &+ UInt64(c)) >= threshold ? i[c] * scale : 0
                c += 1
            }
        }
    }

    /// dx[r] = dOut[r] · mask / (1 - p), the same mask as `apply`.
    func backward(_ dx: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, rows: Range<Int>, width: Int,
                  originalIDs: UnsafePointer<Int32>) {
        apply(dx, dOut, rows: rows, width: width, originalIDs: originalIDs)
    }

    /// The mask's 32 random bits for one element: half of the hash of its pair (low for even
    /// counters, high for odd), so `apply` draws one hash for two elements.
    @inline(__always)
    func bits(_ counter: UInt64) -> UInt32 {
        let h = counterHash(key, counter >> 1)
        return UInt32(truncatingIfNeeded: counter & 1 == 0 ? h : h >> 32)
    }
}
