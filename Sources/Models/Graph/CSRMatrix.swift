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
                        let o = out + row * width
                        o.update(repeating: 0, count: width)
                        for k in offsets[row]..<offsets[row + 1] {
                            let a = vals[k]
                            let xj = x + Int(cols[k]) * width
                            for c in 0..<width { o[c] += a * xj[c] }
                        }
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
                            let d = target + j * width
                            for c in 0..<width { d[c] += a * g[c] }
                        }
                    }
                }
            }
        }
    }
}
