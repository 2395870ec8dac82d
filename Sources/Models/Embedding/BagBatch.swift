/// Bags of embedding-row indices for a batch, in the table-batched (FBGEMM / PyTorch
/// `EmbeddingBag`) layout: feature f's bag for sample b holds
/// `indices[offsets[f·batchSize + b] ..< offsets[f·batchSize + b + 1]]`. Bags may be empty.
public struct BagBatch: Sendable, Equatable {
    public var batchSize: Int
    public var features: Int
    public var offsets: [Int32]
    public var indices: [Int32]

    public init(batchSize: Int, features: Int, offsets: [Int32], indices: [Int32]) {
        precondition(offsets.count == batchSize * features + 1 && offsets.first == 0 && Int(offsets.last!) == indices.count,
                     "offsets do not describe \(features) features x \(batchSize) bags over \(indices.count) indices")
        self.batchSize = batchSize
        self.features = features
        self.offsets = offsets
        self.indices = indices
    }

    /// An empty batch to append bags to, feature by feature.
    public init(batchSize: Int, features: Int, reservingIndices: Int = 0) {
        self.batchSize = batchSize
        self.features = features
        offsets = [0]
        offsets.reserveCapacity(batchSize * features + 1)
        indices = []
        indices.reserveCapacity(reservingIndices)
    }

    /// Index range of the bag of `feature` for `sample`.
    @inline(__always)
    public func bag(feature: Int, sample: Int) -> Range<Int> {
        let bag = feature * batchSize + sample
        return Int(offsets[bag])..<Int(offsets[bag + 1])
    }

    /// Closes the bag being appended to.
    public mutating func endBag() { offsets.append(Int32(indices.count)) }

    /// Appends one bag per entry of `lengths`, filled in order from `source` (as many indices
    /// as the lengths sum to), each index less `base`: a received block of bags in one pass.
    public mutating func appendBags(lengths: ArraySlice<Int32>, indices source: ArraySlice<Int32>, less base: Int32 = 0) {
        var end = Int32(indices.count)
        for length in lengths {
            end += length
            offsets.append(end)
        }
        if base == 0 {
            indices += source
        } else {
            indices += source.lazy.map { $0 - base }
        }
    }

    /// The bags of samples `range` only, every feature kept.
    public func samples(_ range: Range<Int>) -> BagBatch {
        var slice = BagBatch(batchSize: range.count, features: features)
        for feature in 0..<features {
            for sample in range {
                slice.indices.append(contentsOf: indices[bag(feature: feature, sample: sample)])
                slice.endBag()
            }
        }
        return slice
    }
}
