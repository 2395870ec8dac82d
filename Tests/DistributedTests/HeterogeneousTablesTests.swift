import Distributed
import Foundation
import Models
import Sharding
import TestSupport
import Testing

/// `dlrm --tables`: tables of their own rows, dims, pooling and skew, trained under every
/// sharding type and matching the single-rank run.
@Suite struct HeterogeneousTablesTests {
    /// Five tables unlike each other: Zipf and uniform rows, a table given by reuse bins only,
    /// fixed and random bag sizes, dims 4-32.
    static func specs() throws -> [TableSpec] {
        var wide = try TableSpec(name: "wide", rows: 3000, dim: 32, poolingFactor: 2.5, distribution: .uniform)
        wide.bagSizes = .random
        let binned = try TableSpec(name: "binned", rows: 2000, dim: 8, poolingFactor: 3,
                                   bins: ReuseBins.expected(rows: 2000, poolingFactor: 3, distribution: .zipf(0.8)))
        return [try TableSpec(name: "hot", rows: 6000, dim: 16, poolingFactor: 5, distribution: .zipf(1.1)), wide, binned,
                try TableSpec(name: "small", rows: 64, dim: 8, poolingFactor: 1.5, distribution: .uniform),
                try TableSpec(name: "tiny", rows: 16, dim: 4, poolingFactor: 1, distribution: .zipf(1.2))]
    }

    /// How the tables are placed in the equality tests.
    enum Layout: String, CaseIterable, Sendable {
        case tableWise = "table-wise", columnWise = "column-wise", rowWise = "row-wise", dataParallel = "data-parallel"
        /// Row-wise, column-wise, a grid, data-parallel and table-wise side by side.
        case mixed

        func plan(_ tables: [TableSpec], ranks: Int) -> ShardingPlan {
            func cuts(_ count: Int, _ pieces: Int) -> [Range<Int>] {
                let bounds = (0...pieces).map { count * $0 / pieces }
                return zip(bounds, bounds.dropFirst()).map { $0..<$1 }
            }
            return ShardingPlan(ranks: ranks, algorithm: rawValue, placements: tables.enumerated().map { t, table in
                let columns = 0..<table.dim
                switch (self, table.name) {
                case (.dataParallel, _), (.mixed, "small"):
                    return .replicated(table.name)
                case (.tableWise, _), (.mixed, "tiny"):
                    return .init(table: table.name, shards: [.init(columns: columns, rank: t % ranks)])
                case (.columnWise, _), (.mixed, "wide"):
                    return .init(table: table.name, shards: cuts(table.dim, ranks).enumerated().map { .init(columns: $1, rank: (t + $0) % ranks) })
                case (.rowWise, _), (.mixed, "hot"):
                    return .init(table: table.name, shards: cuts(table.rows, ranks).enumerated().map { .init(columns: columns, rows: $1, rank: (t + $0) % ranks) })
                case (.mixed, _):
                    let blocks = cuts(table.rows, 2).flatMap { rows in cuts(table.dim, 2).map { (rows, $0) } }
                    return .init(table: table.name, shards: blocks.enumerated().map { .init(columns: $1.1, rows: $1.0, rank: $0 % ranks) })
                }
            })
        }
    }

    static let arguments = ["dlrm", "--arch-interaction-op", "cat", "--steps", "50", "--print-every", "5", "--batch-size", "256",
                            "--eval-samples", "4096", "--seed", "11"]

    @Test(arguments: [(2, Layout.tableWise), (4, .columnWise), (2, .rowWise), (4, .rowWise), (2, .dataParallel), (2, .mixed), (4, .mixed)])
    func shardedRunsMatchOneRank(ranks: Int, layout: Layout) throws {
        try withTemporaryDirectory("heterogeneous") { directory in
            let specs = directory.appendingPathComponent("tables.json").path, plan = directory.appendingPathComponent("plan.json").path
            let tables = try Self.specs()
            try TableSpecFile.write(tables, to: specs)
            try layout.plan(tables, ranks: ranks).write(to: plan)
            try DLRMCommandTests.expectSameRun(Self.arguments + ["--tables", specs], plan: plan, ranks: ranks, layout: layout.rawValue)
        }
    }

    /// SGD from a mixed plan, and Adagrad from replicas (row-wise Adagrad keeps one accumulator
    /// per row; column cuts would keep one per shard, as TorchRec does, and part from one rank).
    @Test(arguments: [("sgd", Layout.mixed, 1e-4), ("adagrad", .dataParallel, 1e-3)])
    func aCheckpointResumesUnderOtherShardingTypesAndRanks(optimizer: String, first layout: Layout, tolerance: Double) throws {
        try withTemporaryDirectory("heterogeneous-resume") { directory in
            let specs = directory.appendingPathComponent("tables.json").path, checkpoints = directory.appendingPathComponent("ckpt").path
            let tables = try Self.specs()
            try TableSpecFile.write(tables, to: specs)
            let before = directory.appendingPathComponent("before.json").path, after = directory.appendingPathComponent("after.json").path
            try layout.plan(tables, ranks: 2).write(to: before)
            try Layout.rowWise.plan(tables, ranks: 4).write(to: after)
            let arguments = ["dlrm", "--tables", specs, "--arch-interaction-op", "cat", "--print-every", "10", "--batch-size", "256",
                             "--eval-samples", "4096", "--seed", "5", "--optimizer", optimizer, "--lr", optimizer == "sgd" ? "0.2" : "0.05"]
            let whole = try MPIRun.mpitrain(arguments + ["--steps", "40"])
            let first = try MPIRun.mpitrain(arguments + ["--steps", "20", "--plan", before, "--checkpoint-dir", checkpoints], ranks: 2)
            let resumed = try MPIRun.mpitrain(arguments + ["--steps", "40", "--plan", after, "--checkpoint-dir", checkpoints, "--resume"],
                                              ranks: 4)
            #expect(whole.status == 0 && first.status == 0 && resumed.status == 0, "\(first.stderr)\(resumed.stderr)")
            #expect(resumed.stdout.contains("at step 20"), "\(resumed.stdout)")
            let expected = DLRMCommandTests.trajectory(whole), measured = DLRMCommandTests.trajectory(resumed)
            #expect(measured.losses.count == 2)
            for (a, b) in zip(expected.losses.suffix(2), measured.losses) {
                #expect(abs(a - b) <= tolerance * a, "\(optimizer): loss \(b) after resuming, \(a) without a stop")
            }
        }
    }

    @Test func syntheticClicksFollowEachTablesPoolingFactor() throws {
        let tables = try Self.specs()
        let config = try DLRMConfig(bottomMLP: [13, 16], topMLP: [1], tables: tables.map(\.embedding), interaction: .cat)
        let clicks = try SyntheticClicks(config: config, traffic: tables.map(\.traffic), seed: 3)
        let batch = clicks.batch(samples: 0..<8192)
        for (t, table) in tables.enumerated() {
            let lookups = Int(batch.bags.offsets[(t + 1) * batch.count]) - Int(batch.bags.offsets[t * batch.count])
            let pooling = Double(lookups) / Double(batch.count)
            #expect(abs(pooling - table.poolingFactor) <= 0.02 * table.poolingFactor, "table \(table.name): \(pooling)")
        }
    }

    @Test(arguments: [
        ("--arch-embedding-size", "100-100", "--tables gives every table's rows, dim, pooling, bag sizes and distribution"),
        ("--arch-interaction-op", "dot", "dot interaction needs every embedding as wide as the bottom MLP's output: table wide has dim 32"),
    ])
    func conflictingFlagsStopWithOneLine(flag: String, value: String, message: String) throws {
        try withTemporaryDirectory("heterogeneous-bad") { directory in
            let specs = directory.appendingPathComponent("tables.json").path
            try TableSpecFile.write(try Self.specs(), to: specs)
            let run = try MPIRun.mpitrain(["dlrm", "--steps", "1", "--tables", specs, flag, value])
            #expect(run.status != 0)
            #expect(run.stderr.contains(message) && run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        }
    }
}
