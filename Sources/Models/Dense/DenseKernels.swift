import BLASShim

// Dense kernels on row-major blocks: the products of a linear layer (weights stored (in, out),
// so every product is one sgemm with transposes and no copies) and its bias. Shared by the MLPs
// of DLRM and the GNN layers.

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
