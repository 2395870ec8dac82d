import Foundation
import Models
import Sharding

extension Communicator {
    /// The coordinator's first duty: rank 0 makes the plan (`make` loads or searches it) and
    /// validates it against `tables`, this job's rank count and the memory limit; every rank
    /// then receives it as JSON bytes. When rank 0 fails, every rank stops with its one line.
    /// The other ranks wait for as long as the search takes: rank 0 answers their watchdogs'
    /// roll calls as busy.
    public func coordinatePlan(tables: [TableSpec], memoryPerRank: Int?, optimizer: EmbeddingOptimizer,
                               make: () throws -> ShardingPlan) throws -> ShardingPlan {
        let encoded: [UInt8] = try agreeing {
            guard rank == 0 else { return [] }
            let plan = try JobDeadline.busy("making the plan") { try make() }
            try plan.validate(tables: tables, ranks: size, memoryPerRank: memoryPerRank, optimizer: optimizer)
            return Array(try JSONEncoder().encode(plan))
        }
        return try JSONDecoder().decode(ShardingPlan.self, from: Data(try broadcast(encoded, root: 0)))
    }
}
