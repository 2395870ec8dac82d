// DLRM's feature interaction on one batch. Vector 0 of a sample is the bottom MLP's output,
// vector t + 1 its pooled embedding of table t (all of width d for `dot`).

/// out (rows, config.interactionWidth) from bottom (rows, d) and pooled (rows, Σ dims).
func interactionForward(_ kind: Interaction, out: UnsafeMutablePointer<Float>, bottom: UnsafePointer<Float>,
                        pooled: UnsafePointer<Float>, rows: Int, d: Int, pooledWidth: Int, outWidth: Int) {
    let vectors = pooledWidth / d + 1
    for r in 0..<rows {
        let o = out + r * outWidth, x = bottom + r * d, e = pooled + r * pooledWidth
        o.update(from: x, count: d)
        switch kind {
        case .cat:
            (o + d).update(from: e, count: pooledWidth)
        case .dot:
            var p = d
            for i in 1..<vectors {
                let vi = e + (i - 1) * d
                o[p] = dot(vi, x, d)
                p += 1
                for j in 1..<i {
                    o[p] = dot(vi, e + (j - 1) * d, d)
                    p += 1
                }
            }
        }
    }
}

/// dBottom (rows, d) and dPooled (rows, Σ dims) from dOut (rows, outWidth), overwriting both.
func interactionBackward(_ kind: Interaction, outGradient: UnsafePointer<Float>, bottom: UnsafePointer<Float>,
                         pooled: UnsafePointer<Float>, bottomGradient: UnsafeMutablePointer<Float>,
                         pooledGradient: UnsafeMutablePointer<Float>, rows: Int, d: Int, pooledWidth: Int, outWidth: Int) {
    let vectors = pooledWidth / d + 1
    for r in 0..<rows {
        let g = outGradient + r * outWidth, x = bottom + r * d, e = pooled + r * pooledWidth
        let dx = bottomGradient + r * d, de = pooledGradient + r * pooledWidth
        dx.update(from: g, count: d)
        switch kind {
        case .cat:
            de.update(from: g + d, count: pooledWidth)
        case .dot:
            de.update(repeating: 0, count: pooledWidth)
            var p = d
            for i in 1..<vectors {
                let vi = e + (i - 1) * d, dvi = de + (i - 1) * d
                axpy(g[p], x, dvi, d)
                axpy(g[p], vi, dx, d)
                p += 1
                for j in 1..<i {
                    axpy(g[p], e + (j - 1) * d, dvi, d)
                    axpy(g[p], vi, de + (j - 1) * d, d)
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
