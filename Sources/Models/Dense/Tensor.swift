import BLASShim

/// A dense Float32 matrix, row-major and contiguous: activations, gradients and parameters of
/// the dense layers. Value semantics; kernels reach the storage through the `withUnsafe` scopes.
public struct Tensor: Sendable, Equatable {
    public private(set) var rows: Int
    public private(set) var columns: Int
    public var scalars: [Float]

    public init(rows: Int, columns: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && columns >= 0, "negative tensor shape")
        self.rows = rows
        self.columns = columns
        scalars = [Float](repeating: value, count: rows * columns)
    }

    public init(rows: Int, columns: Int, scalars: [Float]) {
        precondition(scalars.count == rows * columns, "\(scalars.count) scalars for a \(rows)x\(columns) tensor")
        self.rows = rows
        self.columns = columns
        self.scalars = scalars
    }

    public subscript(row: Int, column: Int) -> Float {
        get { scalars[row * columns + column] }
        set { scalars[row * columns + column] = newValue }
    }

    /// Changes the row count, keeping the storage's capacity: a layer reuses one buffer for
    /// every batch size. New rows are zero.
    public mutating func resize(rows newRows: Int) {
        guard newRows != rows else { return }
        let count = newRows * columns
        if count < scalars.count {
            scalars.removeLast(scalars.count - count)
        } else {
            scalars.append(contentsOf: repeatElement(0, count: count - scalars.count))
        }
        rows = newRows
    }

    public mutating func zero() { scalars.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }

    @inline(__always)
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    @inline(__always)
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

/// c = alpha · op(a) · op(b) + beta · c through `cblas_sgemm`, where op transposes in place
/// (no copy) when asked.
public func gemm(_ a: Tensor, transposed transposeA: Bool = false, _ b: Tensor, transposed transposeB: Bool = false,
                 into c: inout Tensor, alpha: Float = 1, beta: Float = 0) {
    let (m, k) = transposeA ? (a.columns, a.rows) : (a.rows, a.columns)
    let (k2, n) = transposeB ? (b.columns, b.rows) : (b.rows, b.columns)
    precondition(k == k2 && c.rows == m && c.columns == n, "gemm shapes (\(m)x\(k)) · (\(k2)x\(n)) into (\(c.rows)x\(c.columns))")
    guard m > 0, n > 0 else { return }
    let (aColumns, bColumns) = (a.columns, b.columns)
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), alpha, a.baseAddress, Int32(max(1, aColumns)),
                            b.baseAddress, Int32(max(1, bColumns)), beta, c.baseAddress, Int32(n))
            }
        }
    }
}
