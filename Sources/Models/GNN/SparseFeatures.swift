/// Node features kept as sparse rows when most are zero (bag-of-words graphs such as Cora):
/// layer 0 then drops out and multiplies only the non-zeros. Dropout of a zero is zero, so
/// the results equal the dense path's.
struct SparseFeatures {
    let rowOffsets: [Int]
    let columns: [Int32]
    let values: [Float]
    let width: Int

    /// Sparse rows of `graph`'s features, or nil when more than `maximumDensity` of them are non-zero.
    init?(_ graph: Graph, maximumDensity: Double = 0.1) {
        let nonzeros = graph.features.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
        guard Double(nonzeros) <= maximumDensity * Double(graph.features.count) else { return nil }
        var offsets = [0], columns = [Int32](), values = [Float]()
        columns.reserveCapacity(nonzeros)
        values.reserveCapacity(nonzeros)
        for i in 0..<graph.nodeCount {
            for c in 0..<graph.featureCount where graph.features[i * graph.featureCount + c] != 0 {
                columns.append(Int32(c))
                values.append(graph.features[i * graph.featureCount + c])
            }
            offsets.append(columns.count)
        }
        rowOffsets = offsets
        self.columns = columns
        self.values = values
        width = graph.featureCount
    }

    /// dropped[k] = values[k] · mask for the non-zeros of `rows`.
    func drop(_ dropped: inout [Float], rows: Range<Int>, mask: DropoutMask, originalIDs: UnsafePointer<Int32>) {
        let threshold = mask.threshold
        for row in rows {
            let base = UInt64(UInt32(bitPattern: originalIDs[row])) &* UInt64(width)
            for k in rowOffsets[row]..<rowOffsets[row + 1] {
                dropped[k] = mask.bits(base &+ UInt64(columns[k])) >= threshold ? values[k] * mask.scale : 0
            }
        }
    }

    /// out[i] = dropped[i] · w for each row i in `rows` (out (N, n), w (width, n)).
    func multiply(_ dropped: [Float], rows: Range<Int>, w: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        for row in rows {
            let o = out + row * n
            o.update(repeating: 0, count: n)
            for k in rowOffsets[row]..<rowOffsets[row + 1] where dropped[k] != 0 {
                let a = dropped[k], wr = w + Int(columns[k]) * n
                for c in 0..<n { o[c] += a * wr[c] }
            }
        }
    }

    /// dW += dropped[rows]ᵀ · dOut[rows] (dOut (N, n) indexed by node, dW (width, n)).
    func addTransposedProduct(_ dropped: [Float], rows: Range<Int>, dOut: UnsafePointer<Float>, n: Int, dW: UnsafeMutablePointer<Float>) {
        for row in rows {
            let g = dOut + row * n
            for k in rowOffsets[row]..<rowOffsets[row + 1] where dropped[k] != 0 {
                let a = dropped[k], d = dW + Int(columns[k]) * n
                for c in 0..<n { d[c] += a * g[c] }
            }
        }
    }
}
