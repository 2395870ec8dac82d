import Models

extension TableSpec {
    /// A sampler of the table's traffic, reproducible from `seed`.
    public func sampler(seed: UInt64) -> TrafficSampler {
        var random = SplitMix64(seed: seed, stream: "table-access:" + name)
        return TrafficSampler(traffic, random: &random)
    }

    /// A batch of `batchSize` samples over `tables` (one feature each, in order), reproducible
    /// from `seed`; `round` draws another batch of the same traffic (the same hot rows).
    public static func batch(_ tables: [TableSpec], batchSize: Int, seed: UInt64, round: Int = 0) -> BagBatch {
        let expected = tables.reduce(0.0) { $0 + $1.poolingFactor * ($1.bagSizes == .random ? 2 : 1) } * Double(batchSize)
        var batch = BagBatch(batchSize: batchSize, features: tables.count, reservingIndices: Int(expected * 1.05) + 16)
        for table in tables {
            let sampler = table.sampler(seed: seed)
            var random = SplitMix64(seed: seed, stream: "table-batch:" + table.name + (round == 0 ? "" : "#\(round)"))
            for _ in 0..<batchSize { sampler.appendBag(to: &batch, &random) }
        }
        return batch
    }

    /// A batch whose features are `inputs` of `tables`: each table's bags as `batch` draws them,
    /// keeping of each bag the rows in the input's range, relative to its first row.
    public static func batch(_ tables: [TableSpec], inputs: [EmbeddingInput], batchSize: Int, seed: UInt64, round: Int = 0) -> BagBatch {
        let used = Array(Set(inputs.map(\.table))).sorted()
        let whole = batch(used.map { tables[$0] }, batchSize: batchSize, seed: seed, round: round)
        var result = BagBatch(batchSize: batchSize, features: inputs.count, reservingIndices: whole.indices.count)
        for input in inputs {
            let feature = used.firstIndex(of: input.table)!
            for sample in 0..<batchSize {
                for j in whole.bag(feature: feature, sample: sample) {
                    let row = Int(whole.indices[j])
                    guard let rows = input.rows else { result.indices.append(Int32(row)); continue }
                    if rows.contains(row) { result.indices.append(Int32(row - rows.lowerBound)) }
                }
                result.endBag()
            }
        }
        return result
    }
}
