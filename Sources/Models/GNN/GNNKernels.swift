import BLASShim

// Dense kernels of the GNN layers on row blocks of node-indexed buffers. Row blocks are
// contiguous because nodes are numbered chunk by chunk (see `Graph.permuted`).

/// out (rows, n) = scale · a (rows, k) · w (k, n), plus `out` when `accumulate`.
@inline(__always)
func matmulForward(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                   rows: Int, k: Int, n: Int, scale: Float = 1, accumulate: Bool = false) {
    guard rows > 0 else { return }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(k),
                scale, a, Int32(k), w, Int32(n), accumulate ? 1 : 0, out, Int32(n))
}

/// dW (k, n) += a (rows, k)ᵀ · dOut (rows, n).
@inline(__always)
func matmulBackwardWeight(_ dW: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ dOut: UnsafePointer<Float>,
                          rows: Int, k: Int, n: Int, scale: Float = 1) {
    guard rows > 0 else { return }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(n), Int32(rows),
                scale, a, Int32(k), dOut, Int32(n), 1, dW, Int32(n))
}

/// dA (rows, k) = dOut (rows, n) · w (k, n)ᵀ, plus `dA` when `accumulate`.
@inline(__always)
func matmulBackwardInput(_ dA: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                         rows: Int, k: Int, n: Int, scale: Float = 1, accumulate: Bool = false) {
    guard rows > 0 else { return }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(k), Int32(n),
                scale, dOut, Int32(n), w, Int32(n), accumulate ? 1 : 0, dA, Int32(k))
}

/// out (rows, n) += bias (n) on every row.
@inline(__always)
func addBias(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let o = out + r * n
        for c in 0..<n { o[c] += bias[c] }
    }
}

/// dBias (n) += column sums of dOut (rows, n).
@inline(__always)
func biasBackward(_ dBias: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, rows: Int, n: Int) {
    for r in 0..<rows {
        let g = dOut + r * n
        for c in 0..<n { dBias[c] += g[c] }
    }
}

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
            for c in 0..<width {
                o[c] = Self.bits(key, base &+ UInt64(c)) >= threshold ? i[c] * scale : 0
            }
        }
    }

    /// dx[r] = dOut[r] · mask / (1 - p), the same mask as `apply`.
    func backward(_ dx: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, rows: Range<Int>, width: Int,
                  originalIDs: UnsafePointer<Int32>) {
        apply(dx, dOut, rows: rows, width: width, originalIDs: originalIDs)
    }

    @inline(__always)
    static func bits(_ key: UInt64, _ counter: UInt64) -> UInt32 {
        var z = key &+ counter &* 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return UInt32(truncatingIfNeeded: (z ^ (z >> 31)) >> 32)
    }
}
