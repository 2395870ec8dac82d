/// A batch of click samples: dense features (count, denseFeatures), bags of row indices per
/// table, and labels (0 or 1).
public struct ClickBatch: Sendable, Equatable {
    public var dense: [Float]
    public var bags: BagBatch
    public var labels: [Float]

    public init(dense: [Float], bags: BagBatch, labels: [Float]) {
        precondition(bags.batchSize == labels.count && dense.count % max(labels.count, 1) == 0, "inconsistent click batch")
        self.dense = dense
        self.bags = bags
        self.labels = labels
    }

    public var count: Int { labels.count }

    /// Samples `range` only.
    public func samples(_ range: Range<Int>) -> ClickBatch {
        let width = count > 0 ? dense.count / count : 0
        return ClickBatch(dense: Array(dense[range.lowerBound * width ..< range.upperBound * width]),
                          bags: bags.samples(range), labels: Array(labels[range]))
    }

    /// A batch with one index per bag (Criteo has one value per categorical feature): `rows`
    /// holds each feature's rows for every sample, feature after feature.
    public static func onePerBag(dense: [Float], rows: [Int32], labels: [Float], features: Int) -> ClickBatch {
        let bags = labels.count * features
        let offsets = [Int32](unsafeUninitializedCapacity: bags + 1) { buffer, initialized in
            for i in 0...bags { buffer[i] = Int32(truncatingIfNeeded: i) }
            initialized = bags + 1
        }
        return ClickBatch(dense: dense, bags: BagBatch(batchSize: labels.count, features: features, offsets: offsets, indices: rows), labels: labels)
    }
}
