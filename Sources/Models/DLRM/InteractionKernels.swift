// DLRM's feature interaction on one batch. Vector 0 of a sample is the bottom MLP's output,
// vector t + 1 its pooled embedding of table t (all of width d for `dot`).

/// Where a batch's pooled embeddings are: table t's vector of sample r starts at
/// `bases[t] + r * strides[t]` and is `widths[t]` floats long. The dense (rows, Σ widths)
/// layout is one case; a sharded step reads and writes the vectors where its exchanges put
/// them, instead of copying them into that layout and back.
public struct PooledVectors {
    public var bases: [UnsafeMutablePointer<Float>]
    public var strides: [Int]
    public var widths: [Int]

    public init(bases: [UnsafeMutablePointer<Float>], strides: [Int], widths: [Int]) {
        precondition(bases.count == strides.count && bases.count == widths.count, "one base, stride and width per table")
        self.bases = bases
        self.strides = strides
        self.widths = widths
    }

    /// The dense layout: rows of Σ `widths` floats at `base`, tables in order.
    public init(dense base: UnsafeMutablePointer<Float>, widths: [Int]) {
        let stride = widths.reduce(0, +)
        var offset = 0
        var bases: [UnsafeMutablePointer<Float>] = []
        for width in widths {
            bases.append(base + offset)
            offset += width
        }
        self.init(bases: bases, strides: [Int](repeating: stride, count: widths.count), widths: widths)
    }

    @inline(__always)
    func vector(_ table: Int, sample: Int) -> UnsafeMutablePointer<Float> { bases[table] + sample * strides[table] }
}

/// out (rows, outWidth) from bottom (rows, d) and the pooled vectors.
func interactionForward(_ kind: Interaction, out: UnsafeMutablePointer<Float>, bottom: UnsafePointer<Float>,
                        pooled: PooledVectors, rows: Int, d: Int, outWidth: Int) {
    let tables = pooled.bases.count
    for r in 0..<rows {
        let o = out + r * outWidth, x = bottom + r * d
        o.update(from: x, count: d)
        switch kind {
        case .cat:
            var p = d
            for t in 0..<tables {
                (o + p).update(from: pooled.vector(t, sample: r), count: pooled.widths[t])
                p += pooled.widths[t]
            }
        case .dot:
            var p = d
            for i in 0..<tables {
                let vi = pooled.vector(i, sample: r)
                o[p] = dot(vi, x, d)
                p += 1
                for j in 0..<i {
                    o[p] = dot(vi, pooled.vector(j, sample: r), d)
                    p += 1
                }
            }
        }
    }
}

/// dBottom (rows, d) and the pooled vectors' gradients (laid out as `pooledGradient`) from
/// dOut (rows, outWidth), overwriting both.
func interactionBackward(_ kind: Interaction, outGradient: UnsafePointer<Float>, bottom: UnsafePointer<Float>,
                         pooled: PooledVectors, bottomGradient: UnsafeMutablePointer<Float>,
                         pooledGradient: PooledVectors, rows: Int, d: Int, outWidth: Int) {
    let tables = pooled.bases.count
    for r in 0..<rows {
        let g = outGradient + r * outWidth, x = bottom + r * d
        let dx = bottomGradient + r * d
        dx.update(from: g, count: d)
        switch kind {
        case .cat:
            var p = d
            for t in 0..<tables {
                pooledGradient.vector(t, sample: r).update(from: g + p, count: pooled.widths[t])
                p += pooled.widths[t]
            }
        case .dot:
            for t in 0..<tables { pooledGradient.vector(t, sample: r).update(repeating: 0, count: d) }
            var p = d
            for i in 0..<tables {
                let vi = pooled.vector(i, sample: r), dvi = pooledGradient.vector(i, sample: r)
                axpy(g[p], x, dvi, d)
                axpy(g[p], vi, dx, d)
                p += 1
                for j in 0..<i {
                    axpy(g[p], pooled.vector(j, sample: r), dvi, d)
                    axpy(g[p], vi, pooledGradient.vector(j, sample: r), d)
                    p += 1
                }
            }
        }
    }
}

@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var sum = SIMD8<Float>()
    var c = 0
    while c + 8 <= n {
        sum += UnsafeRawPointer(a + c).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + c).loadUnaligned(as: SIMD8<Float>.self)
        c += 8
    }
    var total = sum.sum()
    while c < n {
        total += a[c] * b[c]
        c += 1
    }
    return total
}

/// y += alpha · x.
@inline(__always)
private func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for c in 0..<n { y[c] += alpha * x[c] }
}
