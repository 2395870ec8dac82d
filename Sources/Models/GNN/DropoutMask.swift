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

    /// Kept elements have hash bits at or above this.
    var threshold: UInt32 { UInt32(min(Double(probability) * 4_294_967_296.0, 4_294_967_295.0)) }

    /// out[r] = x[r] · mask / (1 - p) for `rows` (original node ids give the keys);
    /// with `kept`, also records the mask of those rows there. Sixteen elements at a time where
    /// a row's first counter is even (eight hashes in vector lanes), element by element after.
    func apply(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Range<Int>, width: Int,
               originalIDs: UnsafePointer<Int32>, recording kept: KeptElements? = nil) {
        let scale = self.scale, threshold = SIMD16<UInt32>(repeating: self.threshold)
        // Lane k's bit in a 16-bit mask.
        let laneBits = SIMD16<UInt32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        for row in rows {
            let base = UInt64(UInt32(bitPattern: originalIDs[row])) &* UInt64(width)
            let o = out + row * width, i = x + row * width
            let words = kept?.row(row)
            if let words, let kept { words.update(repeating: 0, count: kept.wordsPerRow) }
            var c = 0
            if base & 1 == 0 {
                while c + 16 <= width {
                    let keep = bits16(base &+ UInt64(c)) .>= threshold
                    let v = (UnsafeRawPointer(i + c).loadUnaligned(as: SIMD16<Float>.self) * scale).replacing(with: 0, where: .!keep)
                    UnsafeMutableRawPointer(o + c).storeBytes(of: v, as: SIMD16<Float>.self)
                    if let words {
                        let bits = SIMD16<UInt32>(repeating: 0).replacing(with: laneBits, where: keep).wrappedSum()
                        words[c >> 6] |= UInt64(bits) << UInt64(c & 63)
                    }
                    c += 16
                }
            }
            if let words {
                forEachElement(base, from: c, width: width) { c, keep in
                    o[c] = keep ? i[c] * scale : 0
                    words[c >> 6] |= (keep ? 1 : 0) << UInt64(c & 63)
                }
            } else {
                forEachElement(base, from: c, width: width) { c, keep in o[c] = keep ? i[c] * scale : 0 }
            }
        }
    }

    /// `bits` of the sixteen elements from the even counter `first`: eight pairs' hashes, whose
    /// low and high halves are, in a little-endian CPU's memory order, the elements in order.
    @inline(__always)
    private func bits16(_ first: UInt64) -> SIMD16<UInt32> {
        let pairs = SIMD8<UInt64>(repeating: first >> 1) &+ SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
        return unsafeBitCast(counterHash(key, pairs), to: SIMD16<UInt32>.self)
    }

    /// dx[r] = dOut[r] · mask / (1 - p) (+ residual[r]), with the mask `apply` recorded in
    /// `kept`: eight elements at a time, each byte of the mask picking their lanes' bit masks.
    func backward(_ dx: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, rows: Range<Int>, width: Int, kept: KeptElements,
                  adding residual: UnsafePointer<Float>? = nil) {
        let scale = self.scale
        laneMasks.withUnsafeBufferPointer { laneMasks in
            for row in rows {
                let words = kept.row(row), d = dx + row * width, g = dOut + row * width
                let r = residual.map { $0 + row * width }
                var c = 0
                while c + 8 <= width {
                    let byte = Int(truncatingIfNeeded: words[c >> 6] >> UInt64(c & 63)) & 0xFF
                    let scaled = UnsafeRawPointer(g + c).loadUnaligned(as: SIMD8<Float>.self) * scale
                    var v = unsafeBitCast(unsafeBitCast(scaled, to: SIMD8<UInt32>.self) & laneMasks[byte], to: SIMD8<Float>.self)
                    if let r { v += UnsafeRawPointer(r + c).loadUnaligned(as: SIMD8<Float>.self) }
                    UnsafeMutableRawPointer(d + c).storeBytes(of: v, as: SIMD8<Float>.self)
                    c += 8
                }
                while c < width {
                    let v = words[c >> 6] >> UInt64(c & 63) & 1 != 0 ? g[c] * scale : 0
                    d[c] = r.map { v + $0[c] } ?? v
                    c += 1
                }
            }
        }
    }

    /// Calls `body(column, kept)` for the elements `start ..< width` of the row whose first
    /// counter is `base`. Element pairs (even, odd) share one hash: its low and high halves.
    @inline(__always)
    private func forEachElement(_ base: UInt64, from start: Int, width: Int, _ body: (Int, Bool) -> Void) {
        let threshold = self.threshold
        var c = start
        if (base &+ UInt64(c)) & 1 == 0 {
            while c + 2 <= width {
                let h = counterHash(key, (base &+ UInt64(c)) >> 1)
                body(c, UInt32(truncatingIfNeeded: h) >= threshold)
                body(c + 1, UInt32(truncatingIfNeeded: h >> 32) >= threshold)
                c += 2
            }
        }
        while c < width {
            body(c, bits(base &+ UInt64(c)) >= threshold)
            c += 1
        }
    }

    /// The mask's 32 random bits for one element: half of the hash of its pair (low for even
    /// counters, high for odd), so `apply` draws one hash for two elements.
    @inline(__always)
    func bits(_ counter: UInt64) -> UInt32 {
        let h = counterHash(key, counter >> 1)
        return UInt32(truncatingIfNeeded: counter & 1 == 0 ? h : h >> 32)
    }
}

/// For each byte of a kept-elements word, the bit masks of its eight lanes (all ones where kept).
private let laneMasks: [SIMD8<UInt32>] = (0..<256).map { byte in
    SIMD8<UInt32>((0..<8).map { byte >> $0 & 1 == 1 ? UInt32.max : 0 })
}

/// Which elements of a layer's input training's dropout kept, one bit each, rows of
/// `wordsPerRow` words: backward reads them instead of hashing every element again.
final class KeptElements {
    let wordsPerRow: Int
    private let words: UnsafeMutablePointer<UInt64>

    init(rows: Int, width: Int) {
        wordsPerRow = (width + 63) / 64
        words = HugePageMemory.allocate(UInt64.self, capacity: rows * wordsPerRow)
    }

    deinit { HugePageMemory.deallocate(words) }

    @inline(__always) func row(_ row: Int) -> UnsafeMutablePointer<UInt64> { words + row * wordsPerRow }
}
