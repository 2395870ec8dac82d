import Foundation
import Models

/// Tracks what each rank holds while a heuristic places tables, and refuses to overfill one.
/// As TorchRec's planner does, the tables at most `task.dataParallelBytes` are replicated on
/// every rank before anything else is placed, and a table that fits on no rank whole is cut by
/// rows over the fewest of the emptiest ranks that can hold it: into equal ranges where they
/// fit, else in proportion to each rank's room.
struct RankLoads {
    let task: PlanningTask
    private(set) var bytes: [Int]
    private(set) var load: [Double]
    /// Per table, its pieces (rows, nil for whole, and rank); empty for a replicated table.
    private var pieces: [[(rows: Range<Int>?, rank: Int)]]
    let replicated: Set<Int>

    init(_ task: PlanningTask) {
        self.task = task
        pieces = [[(rows: Range<Int>?, rank: Int)]](repeating: [], count: task.tables.count)
        // Smallest first, while every rank can hold them all.
        var replicated = Set<Int>(), total = 0
        for t in task.tables.indices.sorted(by: { (task.bytes(ofTable: $0), $0) < (task.bytes(ofTable: $1), $1) })
        where task.bytes(ofTable: t) <= task.dataParallelBytes ?? -1 && total + task.bytes(ofTable: t) <= task.memoryPerRank {
            replicated.insert(t)
            total += task.bytes(ofTable: t)
        }
        self.replicated = replicated
        bytes = [Int](repeating: total, count: task.ranks)
        load = [Double](repeating: 0, count: task.ranks)
    }

    /// The tables left to place, in `order`.
    func toPlace(_ order: [Int]) -> [Int] { order.filter { !replicated.contains($0) } }

    func fits(_ table: Int, on rank: Int) -> Bool { bytes[rank] + task.bytes(ofTable: table) <= task.memoryPerRank }

    /// The least-loaded rank (then the one with most room) that can take `table`.
    func leastLoaded(for table: Int) -> Int? {
        (0..<task.ranks).filter { fits(table, on: $0) }.min { (load[$0], bytes[$0]) < (load[$1], bytes[$1]) }
    }

    /// Places `table` whole on `rank`, or, when `rank` is nil (no rank has room), by rows over
    /// the emptiest ranks; `added` is its load, shared by the pieces as their rows.
    mutating func place(_ table: Int, on rank: Int?, load added: Double = 0) throws(PlanError) {
        if let rank {
            bytes[rank] += task.bytes(ofTable: table)
            load[rank] += added
            pieces[table] = [(nil, rank)]
            return
        }
        let spec = task.tables[table]
        let rowBytes = spec.bytes(rows: 1, columns: spec.dim, optimizer: task.optimizer)
        for count in 2...max(2, min(task.ranks, spec.rows)) {
            let emptiest = Array((0..<task.ranks).sorted { (bytes[$0], $0) < (bytes[$1], $1) }.prefix(count))
            let capacity = emptiest.map { max(0, task.memoryPerRank - bytes[$0]) / rowBytes }
            guard capacity.reduce(0, +) >= spec.rows else { continue }
            // Equal ranges when they fit, else ranges in proportion to the room each rank has.
            var counts = (0..<count).map { spec.rows * ($0 + 1) / count - spec.rows * $0 / count }
            if zip(counts, capacity).contains(where: { $0 > $1 }) {
                let room = capacity.reduce(0, +)
                counts = capacity.map { spec.rows * $0 / room }
                var left = spec.rows - counts.reduce(0, +)
                for k in counts.indices where left > 0 && counts[k] < capacity[k] {
                    counts[k] += 1
                    left -= 1
                }
            }
            var first = 0
            for (rows, r) in zip(counts, emptiest) where rows > 0 {
                bytes[r] += spec.bytes(rows: rows, columns: spec.dim, optimizer: task.optimizer)
                load[r] += added * Double(rows) / Double(spec.rows)
                pieces[table].append((first..<(first + rows), r))
                first += rows
            }
            return
        }
        throw noRoom(for: table)
    }

    func noRoom(for table: Int) -> PlanError {
        .noRoom(table: task.tables[table].name, bytes: task.bytes(ofTable: table), memoryPerRank: task.memoryPerRank, usedByRank: bytes,
                ranks: task.ranks)
    }

    func plan(algorithm: String) -> ShardingPlan {
        ShardingPlan(ranks: task.ranks, algorithm: algorithm, placements: task.tables.enumerated().map { t, table in
            replicated.contains(t) ? .replicated(table.name)
                : .init(table: table.name, shards: pieces[t].map { .init(columns: 0..<table.dim, rows: $0.rows, rank: $0.rank) })
        })
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
        for table in loads.toPlace(Array(task.tables.indices)) {
            let candidates = (0..<task.ranks).filter { loads.fits(table, on: $0) }
            try loads.place(table, on: candidates.isEmpty ? nil : candidates[random.nextInt(below: candidates.count)])
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
        for table in loads.toPlace(Array(task.tables.indices)) {
            try loads.place(table, on: (0..<task.ranks).map({ (table + $0) % task.ranks }).first(where: { loads.fits(table, on: $0) }))
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
        for table in loads.toPlace(task.tables.indices.sorted(by: { (costs[$0], $1) > (costs[$1], $0) })) {
            try loads.place(table, on: loads.leastLoaded(for: table), load: costs[table])
        }
        return loads.plan(algorithm: name)
    }
}
