import Foundation
import Models

/// Tracks what each rank holds while a planner places tables, and refuses to overfill one.
struct RankLoads {
    let task: PlanningTask
    private(set) var bytes: [Int]
    private(set) var load: [Double]
    private(set) var rankOfTable: [Int]

    init(_ task: PlanningTask) {
        self.task = task
        bytes = [Int](repeating: 0, count: task.ranks)
        load = [Double](repeating: 0, count: task.ranks)
        rankOfTable = [Int](repeating: -1, count: task.tables.count)
    }

    func fits(_ table: Int, on rank: Int) -> Bool { bytes[rank] + task.bytes(ofTable: table) <= task.memoryPerRank }

    mutating func place(_ table: Int, on rank: Int, load added: Double = 0) {
        bytes[rank] += task.bytes(ofTable: table)
        load[rank] += added
        rankOfTable[table] = rank
    }

    /// The least-loaded rank (then the one with most room) that can take `table`.
    func leastLoaded(for table: Int) -> Int? {
        (0..<task.ranks).filter { fits(table, on: $0) }.min { (load[$0], bytes[$0]) < (load[$1], bytes[$1]) }
    }

    func noRoom(for table: Int) -> PlanError {
        .noRoom(table: task.tables[table].name, bytes: task.bytes(ofTable: table), memoryPerRank: task.memoryPerRank, usedByRank: bytes)
    }

    func plan(algorithm: String) -> ShardingPlan {
        ShardingPlan(tables: task.tables, rankOfTable: rankOfTable, ranks: task.ranks, algorithm: algorithm)
    }
}

/// Every table to a rank drawn at random among those with room (seeded).
public struct RandomPlanner: Planner {
    public let name = "random"
    public var seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    public func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan {
        var random = SplitMix64(seed: seed, stream: "random-plan")
        var loads = RankLoads(task)
        for table in task.tables.indices {
            let candidates = (0..<task.ranks).filter { loads.fits(table, on: $0) }
            guard !candidates.isEmpty else { throw loads.noRoom(for: table) }
            loads.place(table, on: candidates[random.nextInt(below: candidates.count)])
        }
        return loads.plan(algorithm: name)
    }
}

/// Tables dealt to ranks in turn; a table skips ranks without room.
public struct RoundRobinPlanner: Planner {
    public let name = "round-robin"

    public init() {}

    public func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan {
        var loads = RankLoads(task)
        for table in task.tables.indices {
            guard let rank = (0..<task.ranks).map({ (table + $0) % task.ranks }).first(where: { loads.fits(table, on: $0) }) else {
                throw loads.noRoom(for: table)
            }
            loads.place(table, on: rank)
        }
        return loads.plan(algorithm: name)
    }
}

/// The greedy baselines of the NeuroShard and DreamShard papers: tables in descending order of
/// a cost proxy, each to the rank with the least summed proxy that has room.
public struct GreedyPlanner: Planner {
    /// What a table is taken to cost.
    public enum Proxy: String, CaseIterable, Sendable {
        case dim, size, lookup
        case sizeLookup = "size-lookup"

        func cost(_ table: TableSpec) -> Double {
            switch self {
            case .dim: Double(table.dim)
            case .size: Double(table.rows * table.dim)
            case .lookup: Double(table.dim) * table.poolingFactor
            case .sizeLookup: Double(table.dim) * table.poolingFactor * log10(Double(max(table.rows, 2)))
            }
        }
    }

    public let proxy: Proxy
    public var name: String { "greedy-" + proxy.rawValue }

    public init(_ proxy: Proxy) { self.proxy = proxy }

    public func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan {
        let costs = task.tables.map(proxy.cost)
        var loads = RankLoads(task)
        for table in task.tables.indices.sorted(by: { (costs[$0], $1) > (costs[$1], $0) }) {
            guard let rank = loads.leastLoaded(for: table) else { throw loads.noRoom(for: table) }
            loads.place(table, on: rank, load: costs[table])
        }
        return loads.plan(algorithm: name)
    }
}
