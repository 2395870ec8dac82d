import Foundation
import Models

/// A plan in TorchRec's vocabulary, as `EmbeddingShardingPlanner` writes a `ParameterSharding`
/// per table: its sharding type, compute kernel and ranks, and a sharding spec that lists every
/// shard's offsets and sizes (row, column) and placement (`rank:R/cpu`). JSON keyed by table.
public struct TorchRecPlan: Codable, Hashable, Sendable {
    public struct ShardMetadata: Codable, Hashable, Sendable {
        public var shardOffsets: [Int]
        public var shardSizes: [Int]
        public var placement: String

        public init(shardOffsets: [Int], shardSizes: [Int], placement: String) {
            self.shardOffsets = shardOffsets
            self.shardSizes = shardSizes
            self.placement = placement
        }

        private enum CodingKeys: String, CodingKey {
            case shardOffsets = "shard_offsets", shardSizes = "shard_sizes", placement
        }
    }

    public struct ParameterSharding: Codable, Hashable, Sendable {
        public var shardingType: String
        public var computeKernel: String
        public var ranks: [Int]
        /// Nil for a data-parallel table, as in TorchRec.
        public var shardingSpec: [ShardMetadata]?

        public init(shardingType: String, computeKernel: String, ranks: [Int], shardingSpec: [ShardMetadata]?) {
            self.shardingType = shardingType
            self.computeKernel = computeKernel
            self.ranks = ranks
            self.shardingSpec = shardingSpec
        }

        private enum CodingKeys: String, CodingKey {
            case shardingType = "sharding_type", computeKernel = "compute_kernel", ranks, shardingSpec = "sharding_spec"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(shardingType, forKey: .shardingType)
            try c.encode(computeKernel, forKey: .computeKernel)
            try c.encode(ranks, forKey: .ranks)
            try c.encode(shardingSpec, forKey: .shardingSpec)  // null for data-parallel tables
        }
    }

    public var tables: [String: ParameterSharding]
}

extension ShardingPlan {
    /// The plan as TorchRec describes one (see `TorchRecPlan`). Sharded tables use the fused
    /// kernel (lookup and optimizer in one pass, as here), replicated ones the dense kernel. A
    /// grid whose blocks TorchRec's `grid_shard` cannot express (column pieces each cut into row
    /// ranges) throws, naming the table.
    public func torchRec(tables: [TableSpec]) throws(PlanError) -> TorchRecPlan {
        try validate(tables: tables)
        let byName = Dictionary(uniqueKeysWithValues: tables.map { ($0.name, $0) })
        var result: [String: TorchRecPlan.ParameterSharding] = [:]
        for placement in placements {
            let table = byName[placement.table]!
            if placement.dataParallel {
                result[table.name] = .init(shardingType: ShardingType.dataParallel.rawValue, computeKernel: "dense",
                                           ranks: Array(0..<ranks), shardingSpec: nil)
                continue
            }
            if placement.type == .grid {
                let columns = Set(placement.shards.map(\.columns)).sorted { ($0.lowerBound, $0.upperBound) < ($1.lowerBound, $1.upperBound) }
                for (i, a) in columns.enumerated() {
                    for b in columns[(i + 1)...] where a.overlaps(b) {
                        throw PlanError("table \(table.name): its blocks cut columns \(a.lowerBound)..<\(a.upperBound) and "
                                        + "\(b.lowerBound)..<\(b.upperBound) across each other; TorchRec's grid_shard needs "
                                        + "column pieces each cut into row ranges")
                    }
                }
            }
            let shards = placement.shards.sorted { ($0.columns.lowerBound, $0.rows?.lowerBound ?? 0) < ($1.columns.lowerBound, $1.rows?.lowerBound ?? 0) }
            result[table.name] = .init(
                shardingType: placement.type.rawValue, computeKernel: "fused", ranks: shards.map(\.rank),
                shardingSpec: shards.map { shard in
                    let rows = shard.rows ?? 0..<table.rows
                    return .init(shardOffsets: [rows.lowerBound, shard.columns.lowerBound], shardSizes: [rows.count, shard.columns.count],
                                 placement: "rank:\(shard.rank)/cpu")
                })
        }
        return TorchRecPlan(tables: result)
    }
}

extension TorchRecPlan {
    /// Writes the plan as pretty-printed JSON, keys sorted (atomically).
    public func write(to path: String) throws(PlanError) {
        do { try JSONFile.write(tables, to: path) } catch { throw PlanError(error.description) }
    }
}
