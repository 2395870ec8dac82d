/// A sparse matrix in compressed sparse row form, Float values, Int32 column indices.
public struct CSRMatrix: Sendable, Hashable {
    public let rowCount: Int
    public let columnCount: Int
    /// `rowCount + 1` offsets into `columns` and `values`.
    public var rowOffsets: [Int]
    public var columns: [Int32]
    public var values: [Float]

    public init(rowCount: Int, columnCount: Int, rowOffsets: [Int], columns: [Int32], values: [Float]) {
        precondition(rowOffsets.count == rowCount + 1 && columns.count == values.count, "inconsistent CSR arrays")
        self.rowCount = rowCount
        self.columnCount = columnCount
        self.rowOffsets = rowOffsets
        self.columns = columns
        self.values = values
    }

    public var nonzeroCount: Int { columns.count }

    /// The normalised adjacency D^-1/2 (A + I) D^-1/2 of an undirected graph given as edge pairs
    /// (duplicates, both directions and self loops are folded), columns sorted in each row.
    public static func normalizedAdjacency(nodeCount n: Int, edges: [(Int32, Int32)]) -> CSRMatrix {
        // Count each undirected edge in both directions, plus one self loop per node.
        var degree = [Int](repeating: 1, count: n)
        for (a, b) in edges where a != b {
            degree[Int(a)] += 1
            degree[Int(b)] += 1
        }
        var offsets = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { offsets[i + 1] = offsets[i] + degree[i] }
        var columns = [Int32](repeating: 0, count: offsets[n])
        var fill = Array(offsets[0..<n])
        for i in 0..<n {
            columns[fill[i]] = Int32(i)
            fill[i] += 1
        }
        for (a, b) in edges where a != b {
            columns[fill[Int(a)]] = b
            fill[Int(a)] += 1
            columns[fill[Int(b)]] = a
            fill[Int(b)] += 1
        }
        // Sort each row and drop duplicate entries.
        var compactOffsets = [Int](repeating: 0, count: n + 1)
        var compact = [Int32]()
        compact.reserveCapacity(columns.count)
        for i in 0..<n {
            columns[offsets[i]..<offsets[i + 1]].sort()
            var previous: Int32 = -1
            for j in offsets[i]..<offsets[i + 1] where columns[j] != previous {
                compact.append(columns[j])
                previous = columns[j]
            }
            compactOffsets[i + 1] = compact.count
        }
        var inverseRoot = [Float](repeating: 0, count: n)
        for i in 0..<n { inverseRoot[i] = 1 / Float(compactOffsets[i + 1] - compactOffsets[i]).squareRoot() }
        var values = [Float](repeating: 0, count: compact.count)
        for i in 0..<n {
            for k in compactOffsets[i]..<compactOffsets[i + 1] {
                values[k] = inverseRoot[i] * inverseRoot[Int(compact[k])]
            }
        }
        return CSRMatrix(rowCount: n, columnCount: n, rowOffsets: compactOffsets, columns: compact, values: values)
    }
}

// MARK: - Kernels

extension CSRMatrix {
    /// out[i] = sum_j A[i, j] x[j] for each row i in `rows`; rows of `out` and `x` are `width`
    /// wide and indexed by node (out (N, width), x (N, width)).
    public func multiplyRows(
        _ rows: Range<Int>, x: UnsafePointer<Float>, width: Int, out: UnsafeMutablePointer<Float>
    ) {
        rowOffsets.withUnsafeBufferPointer { offsets in
            columns.withUnsafeBufferPointer { cols in
                values.withUnsafeBufferPointer { vals in
                    for row in rows {
                        if row + 1 < rows.upperBound { prefetchNeighbours(offsets[row + 1]..<offsets[row + 2], cols.baseAddress!, x, width) }
                        gatherRow(offsets[row]..<offsets[row + 1], cols.baseAddress!, vals.baseAddress!, x, width, out + row * width)
                    }
                }
            }
        }
    }

    /// dx[j] += A[i, j] dy[i] for each row i in `rows` (A^T dy restricted to those rows). With
    /// `stale`, the part for a node j whose chunk comes after `chunk` goes to `stale.into`: its
    /// forward used last epoch's value, so its gradient belongs to a later pass.
    public func multiplyTransposedRowsAdding(
        _ rows: Range<Int>, dy: UnsafePointer<Float>, width: Int, dx: UnsafeMutablePointer<Float>,
        stale: (chunkOf: UnsafePointer<Int32>, chunk: Int32, into: UnsafeMutablePointer<Float>)? = nil
    ) {
        if rows == 0..<rowCount && stale == nil && rowCount == columnCount {
            // Every row at once and nothing stale: A is symmetric, so A^T dy = A dy, gathered row
            // by row in registers instead of scattered to memory.
            addingSymmetricProduct(dy: dy, width: width, dx: dx)
            return
        }
        rowOffsets.withUnsafeBufferPointer { offsets in
            columns.withUnsafeBufferPointer { cols in
                values.withUnsafeBufferPointer { vals in
                    for row in rows {
                        let g = dy + row * width
                        for k in offsets[row]..<offsets[row + 1] {
                            let a = vals[k]
                            let j = Int(cols[k])
                            var target = dx
                            if let stale, stale.chunkOf[j] > stale.chunk { target = stale.into }
                            axpy(a, g, target + j * width, width)
                        }
                    }
                }
            }
        }
    }

    /// dx += A dy for a symmetric A (every row).
    private func addingSymmetricProduct(dy: UnsafePointer<Float>, width: Int, dx: UnsafeMutablePointer<Float>) {
        let row = UnsafeMutablePointer<Float>.allocate(capacity: width)
        defer { row.deallocate() }
        rowOffsets.withUnsafeBufferPointer { offsets in
            columns.withUnsafeBufferPointer { cols in
                values.withUnsafeBufferPointer { vals in
                    for i in 0..<rowCount {
                        if i + 1 < rowCount { prefetchNeighbours(offsets[i + 1]..<offsets[i + 2], cols.baseAddress!, dy, width) }
                        gatherRow(offsets[i]..<offsets[i + 1], cols.baseAddress!, vals.baseAddress!, dy, width, row)
                        let d = dx + i * width
                        for c in 0..<width { d[c] += row[c] }
                    }
                }
            }
        }
    }
}

/// Requests the rows of x that the next gathered row will read.
@inline(__always)
private func prefetchNeighbours(_ entries: Range<Int>, _ cols: UnsafePointer<Int32>, _ x: UnsafePointer<Float>, _ width: Int) {
    for k in entries { prefetchRow(x + Int(cols[k]) * width, width: width) }
}

/// out = sum over k in `entries` of vals[k] · x[cols[k]], for rows `width` wide. Widths that are
/// multiples of 16 keep 64 columns of the sum in registers across the whole row.
@inline(__always)
private func gatherRow(
    _ entries: Range<Int>, _ cols: UnsafePointer<Int32>, _ vals: UnsafePointer<Float>,
    _ x: UnsafePointer<Float>, _ width: Int, _ out: UnsafeMutablePointer<Float>
) {
    typealias V = SIMD16<Float>
    let raw = UnsafeRawPointer(x)
    var c = 0
    if width % 16 == 0 {
        while c + 64 <= width {
            var s0 = V(), s1 = V(), s2 = V(), s3 = V()
            for k in entries {
                let a = vals[k]
                let base = raw + (Int(cols[k]) * width + c) * 4
                s0 += a * base.loadUnaligned(as: V.self)
                s1 += a * base.loadUnaligned(fromByteOffset: 64, as: V.self)
                s2 += a * base.loadUnaligned(fromByteOffset: 128, as: V.self)
                s3 += a * base.loadUnaligned(fromByteOffset: 192, as: V.self)
            }
            let o = UnsafeMutableRawPointer(out + c)
            o.storeBytes(of: s0, as: V.self)
            o.storeBytes(of: s1, toByteOffset: 64, as: V.self)
            o.storeBytes(of: s2, toByteOffset: 128, as: V.self)
            o.storeBytes(of: s3, toByteOffset: 192, as: V.self)
            c += 64
        }
        while c < width {
            var s = V()
            for k in entries { s += vals[k] * (raw + (Int(cols[k]) * width + c) * 4).loadUnaligned(as: V.self) }
            UnsafeMutableRawPointer(out + c).storeBytes(of: s, as: V.self)
            c += 16
        }
        return
    }
    out.update(repeating: 0, count: width)
    for k in entries { axpy(vals[k], x + Int(cols[k]) * width, out, width) }
}

/// y += a · x over `count` floats.
@inline(__always)
private func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
    for c in 0..<count { y[c] += a * x[c] }
}
