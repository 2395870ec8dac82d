import Foundation
import Models

/// NeuroShard's search (Zha et al., MLSys 2023) on the pre-trained cost model: a greedy grid
/// search places shards table-wise, and a beam search over column halvings of the costliest
/// shards on the bottleneck rank looks for a cheaper plan. Tables larger than a rank are cut
/// by rows first (`RowBlocks`); tables under the task's data-parallel limit are replicated
/// where the model predicts a cheaper step. Plans are judged by the model's
/// predicted cost (max over ranks of compute plus communication), each rank's compute raised
/// by the ensemble's disagreement about it (`NeuroShardCostModel.uncertaintyWeight`); memory
/// is a hard limit.
public struct NeuroShardPlanner: Planner {
    public let name = "neuroshard"
    public let model: NeuroShardCostModel
    public let communication: CommunicationCostModel
    public var beamWidth = 3
    public var candidates = 10
    public var depth = 10
    /// Caps on a rank's summed dims, as multiples of the mean, tried by the grid search.
    public var dimCaps: [Double] = [1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0, .infinity]

    public init(model: NeuroShardCostModel, communication: CommunicationCostModel) {
        self.model = model
        self.communication = communication
    }

    /// A shard to place: a column range of a table.
    struct Piece: Hashable {
        var table: Int
        var columns: Range<Int>
    }

    /// A table no rank can hold is searched as row blocks (each a table to the search), which
    /// the plan returns as row-wise shards, or grid shards where the search cut a block's columns.
    public func plan(_ task: PlanningTask) throws(PlanError) -> ShardingPlan {
        try RowBlocks.plan(task, search)
            .replicatingWherePredictedCheaper(task, predictor: NeuroShardPrediction(model: model, communication: communication, batchSize: task.batchSize))
    }

    /// The grid search, then the beam search over column cuts; `rowCut` says which tables of
    /// `task` are row blocks of a larger one.
    private func search(_ task: PlanningTask, rowCut: [Bool]) throws(PlanError) -> ShardingPlan {
        let search = Search(task: task, rowCut: rowCut)
        var best = try greedyGrid(search, pieces: task.tables.indices.map { Piece(table: $0, columns: 0..<task.tables[$0].dim) })
        var beam = [best]
        for _ in 0..<depth {
            var next: [Candidate] = []
            for state in beam {
                for split in splits(of: state, search) {
                    if let placed = try? greedyGrid(search, pieces: split), !next.contains(where: { $0.pieces == placed.pieces }) {
                        next.append(placed)
                    }
                }
            }
            guard !next.isEmpty else { break }
            next.sort { $0.cost < $1.cost }
            beam = Array(next.prefix(beamWidth))
            if beam[0].cost < best.cost { best = beam[0] }
        }
        return best.plan(task, algorithm: name)
    }

    /// The task searched, and which of its tables are row blocks.
    struct Search {
        var task: PlanningTask
        var rowCut: [Bool]

        /// `piece` as the cost model sees it.
        func modelPiece(_ piece: Piece) -> NeuroShardCostModel.Piece {
            NeuroShardCostModel.Piece(table: task.tables[piece.table], columns: piece.columns.count, rowCut: rowCut[piece.table])
        }
    }

    /// A placement of pieces and its predicted cost.
    struct Candidate {
        var pieces: [Piece]
        var ranks: [Int]
        var rankCosts: [Double]
        var cost: Double { rankCosts.max() ?? 0 }

        func plan(_ task: PlanningTask, algorithm: String) -> ShardingPlan {
            var shards = [[ShardingPlan.Shard]](repeating: [], count: task.tables.count)
            for (piece, rank) in zip(pieces, ranks) { shards[piece.table].append(.init(columns: piece.columns, rank: rank)) }
            return ShardingPlan(ranks: task.ranks, algorithm: algorithm, placements: task.tables.indices.map { t in
                // Halves of a piece that the grid put on one rank are one block there.
                ShardingPlan.Placement(table: task.tables[t].name, shards: shards[t]).fused(task.tables[t])
            })
        }
    }

    /// New piece lists: one of the `candidates` costliest pieces of the bottleneck rank cut into
    /// two column halves, each at least 16 columns (a 64-byte cache line) wide: a lookup in a
    /// narrower piece still costs a whole line, so narrower cuts save no memory traffic.
    private func splits(of state: Candidate, _ search: Search) -> [[Piece]] {
        guard let bottleneck = state.rankCosts.indices.max(by: { state.rankCosts[$0] < state.rankCosts[$1] }) else { return [] }
        let mine = state.pieces.indices.filter { state.ranks[$0] == bottleneck && state.pieces[$0].columns.count >= 32 }
        let single = model.head(model.embed(mine.map { search.modelPiece(state.pieces[$0]) }), batch: search.task.batchSize, penalized: true)
        let order = mine.indices.sorted { single[$0].forward + single[$0].backward > single[$1].forward + single[$1].backward }
        return order.prefix(candidates).map { k in
            let i = mine[k], piece = state.pieces[i]
            let middle = piece.columns.lowerBound + piece.columns.count / 2
            var pieces = state.pieces
            pieces[i] = Piece(table: piece.table, columns: piece.columns.lowerBound..<middle)
            pieces.insert(Piece(table: piece.table, columns: middle..<piece.columns.upperBound), at: i + 1)
            return pieces
        }
    }

    /// The greedy grid search: for each dim cap, each piece in turn goes to the rank with room
    /// (and within the cap, when any rank is) whose predicted cost after taking it is lowest;
    /// pieces go costliest first, and again largest first (which packs tight memory better).
    /// The cheapest plan over both orders and all caps.
    func greedyGrid(_ search: Search, pieces: [Piece]) throws(PlanError) -> Candidate {
        let task = search.task, items = pieces.map(search.modelPiece)
        let embeddings = model.embed(items)
        let alone = model.head(embeddings, batch: task.batchSize, penalized: true)
        let bytes = pieces.map { task.tables[$0.table].bytes(columns: $0.columns.count, optimizer: task.optimizer) }
        let byCost = pieces.indices.sorted { (alone[$0].forward + alone[$0].backward, $1) > (alone[$1].forward + alone[$1].backward, $0) }
        let bySize = pieces.indices.sorted { (bytes[$0], $1) > (bytes[$1], $0) }
        let meanDims = Double(items.reduce(0) { $0 + $1.columns }) / Double(task.ranks)
        let width = embeddings.first?.count ?? 0
        var best: Candidate?
        var failure: PlanError?
        // Costliest first balances best; largest first packs best when memory is tight.
        for order in [byCost, bySize] {
            for cap in dimCaps {
                var sums = [[Float]](repeating: [Float](repeating: 0, count: width), count: task.ranks)
                var used = [Int](repeating: 0, count: task.ranks), dims = [Int](repeating: 0, count: task.ranks)
                var lookups = [Double](repeating: 0, count: task.ranks)
                var ranks = [Int](repeating: -1, count: pieces.count)
                var placedAll = true
                for i in order {
                    let roomy = (0..<task.ranks).filter { used[$0] + bytes[i] <= task.memoryPerRank }
                    guard !roomy.isEmpty else {
                        failure = .noRoom(table: task.tables[pieces[i].table].name, bytes: bytes[i], memoryPerRank: task.memoryPerRank,
                                          usedByRank: used)
                        placedAll = false
                        break
                    }
                    let capped = roomy.filter { Double(dims[$0] + items[i].columns) <= cap * meanDims + 1e-9 }
                    let choices = capped.isEmpty ? roomy : capped
                    let trial = choices.map { r in zip(sums[r], embeddings[i]).map { $0 + $1 } }
                    let compute = model.head(trial, batch: task.batchSize, penalized: true)
                    let costs = choices.indices.map { k in
                        compute[k].forward + compute[k].backward
                            + communication.rank(width: dims[choices[k]] + items[i].columns,
                                                 lookups: lookups[choices[k]] + items[i].table.poolingFactor, ranks: task.ranks, batchSize: task.batchSize)
                    }
                    let k = costs.indices.min { costs[$0] < costs[$1] }!
                    let r = choices[k]
                    sums[r] = trial[k]
                    used[r] += bytes[i]
                    dims[r] += items[i].columns
                    lookups[r] += items[i].table.poolingFactor
                    ranks[i] = r
                }
                guard placedAll else { continue }
                let compute = model.head(sums, batch: task.batchSize, penalized: true)
                let rankCosts = (0..<task.ranks).map { r in
                    compute[r].forward + compute[r].backward
                        + communication.rank(width: dims[r], lookups: lookups[r], ranks: task.ranks, batchSize: task.batchSize)
                }
                let candidate = Candidate(pieces: pieces, ranks: ranks, rankCosts: rankCosts)
                if best == nil || candidate.cost < best!.cost { best = candidate }
            }
        }
        guard let best else { throw failure ?? PlanError("no plan fits") }
        return best
    }

}

/// The cost model's predictions for a whole plan: each rank's shard set through the compute
/// model, communication from the all-to-all model.
public struct NeuroShardPrediction: PlanCostModel {
    public let model: NeuroShardCostModel
    public let communication: CommunicationCostModel
    public let batchSize: Int

    public init(model: NeuroShardCostModel, communication: CommunicationCostModel, batchSize: Int) {
        self.model = model
        self.communication = communication
        self.batchSize = batchSize
    }

    public func compute(byRank: [[EmbeddingShardSpec]], tables: [TableSpec]) -> [(forward: Double, backward: Double)] {
        byRank.map { shards in model.predict(shards.map { NeuroShardCostModel.Piece(tables[$0.table], shard: $0) }, batch: batchSize) }
    }
}
