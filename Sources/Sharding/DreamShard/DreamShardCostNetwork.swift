import Foundation
import Models

/// DreamShard's cost network (Zha et al., NeurIPS 2022): a per-table MLP over the 21 features;
/// a rank's embedding is the sum over its tables; three heads predict the rank's forward,
/// backward and communication milliseconds, and a fourth predicts the step's cost from the
/// elementwise max of the ranks' embeddings. It works for any number of tables and ranks.
///
/// The communication and overall heads also read the plan's rank count (as log2(ranks) / 3):
/// an all-to-all's time depends on how many ranks take part, not only on the bytes one rank
/// sends, so one network can be trained on, and price, tasks of 2, 4 and 8 ranks alike.
public final class DreamShardCostNetwork {
    static let tableSizes = [DreamShardFeatures.count, 128, 32]
    static let computeHeadSizes = [32, 64, 1]
    static let rankAwareHeadSizes = [33, 64, 1]
    static var width: Int { tableSizes.last! }

    let parameters: ParameterBuffer
    let table: MLP
    /// Forward, backward and communication heads, in that order; only the last reads the rank count.
    let kernelHeads: [MLP]
    let overallHead: MLP

    init(seed: UInt64) {
        let tableCount = MLP.parameterCount(sizes: Self.tableSizes)
        let computeCount = MLP.parameterCount(sizes: Self.computeHeadSizes), rankAwareCount = MLP.parameterCount(sizes: Self.rankAwareHeadSizes)
        let parameters = ParameterBuffer(count: tableCount + 2 * computeCount + 2 * rankAwareCount)
        self.parameters = parameters
        table = MLP(sizes: Self.tableSizes, reluOnLast: true, parameters: parameters, offset: 0)
        let offsets = [tableCount, tableCount + computeCount, tableCount + 2 * computeCount, tableCount + 2 * computeCount + rankAwareCount]
        kernelHeads = [Self.computeHeadSizes, Self.computeHeadSizes, Self.rankAwareHeadSizes].enumerated().map { h, sizes in
            MLP(sizes: sizes, reluOnLast: false, parameters: parameters, offset: offsets[h])
        }
        overallHead = MLP(sizes: Self.rankAwareHeadSizes, reluOnLast: false, parameters: parameters, offset: offsets[3])
        var random = SplitMix64(seed: seed, stream: "dreamshard-cost-network")
        for mlp in [table] + kernelHeads + [overallHead] { mlp.initialize(&random) }
    }

    /// The rank count as the rank-aware heads read it.
    static func rankFeature(_ ranks: Int) -> Float { Float(log2(Double(max(ranks, 1)))) / 3 }

    /// (rows, width) embeddings with each row's rank feature appended: (rows, width + 1).
    static func withRanks(_ rows: [Float], ranks: [Int]) -> [Float] {
        var out = [Float](), w = width
        out.reserveCapacity(ranks.count * (w + 1))
        for (r, count) in ranks.enumerated() {
            out += rows[r * w ..< (r + 1) * w]
            out.append(rankFeature(count))
        }
        return out
    }

    /// The first `width` columns of (rows, width + 1) input gradients: the gradient of the
    /// embeddings, without the rank feature's.
    static func withoutRanks(_ gradient: [Float], rows: Int) -> [Float] {
        (0..<rows).flatMap { r in gradient[r * (width + 1) ..< r * (width + 1) + width] }
    }

    /// Table embeddings, (tables, width), of features (tables, 21).
    func embed(_ features: [Float]) -> [Float] {
        table.forward(features, rows: features.count / DreamShardFeatures.count)
    }

    /// Predicted forward, backward and communication of ranks whose summed embeddings are
    /// `sums` (rows, width), each a rank of a plan over `ranks` ranks.
    func kernels(_ sums: [Float], ranks: Int) -> [RankCost] {
        let rows = sums.count / Self.width
        let forward = kernelHeads[0].forward(sums, rows: rows), backward = kernelHeads[1].forward(sums, rows: rows)
        let communication = kernelHeads[2].forward(Self.withRanks(sums, ranks: [Int](repeating: ranks, count: rows)), rows: rows)
        return (0..<rows).map { RankCost(forward: Double(forward[$0]), backward: Double(backward[$0]), communication: Double(communication[$0])) }
    }

    /// Predicted step cost of plans, each given as its ranks' summed embeddings (ranks, width).
    func overall(_ plans: [[Float]]) -> [Double] {
        let maxima = Self.withRanks(plans.flatMap { Self.rankMax($0).values }, ranks: plans.map { $0.count / Self.width })
        return overallHead.forward(maxima, rows: plans.count).map(Double.init)
    }

    /// Elementwise max over ranks of (ranks, width) sums, and which rank gave each element.
    static func rankMax(_ sums: [Float]) -> (values: [Float], ranks: [Int]) {
        var values = Array(sums[0..<width]), ranks = [Int](repeating: 0, count: width)
        for r in 1..<(sums.count / width) {
            for j in 0..<width where sums[r * width + j] > values[j] {
                values[j] = sums[r * width + j]
                ranks[j] = r
            }
        }
        return (values, ranks)
    }

    // MARK: - Training

    /// One measured rank: its tables (indices into its task), its plan's rank count and the
    /// oracle's times.
    struct KernelSample {
        var task: Int
        var tables: [Int]
        var ranks: Int
        var cost: RankCost
    }

    /// One measured plan: each rank's tables and the oracle's step cost.
    struct PlanSample {
        var task: Int
        var tablesByRank: [[Int]]
        var cost: Double
    }

    /// One Adam step on the sum of the four mean squared errors over a mini-batch of ranks and
    /// one of plans; `features` are each task's table features. Returns the four losses.
    func trainStep(kernels: [KernelSample], plans: [PlanSample], features: [[Float]], adam: inout Adam) -> [Double] {
        let width = Self.width, f = DreamShardFeatures.count
        var losses: [Double] = []
        // Ranks: gather their tables' features, embed, sum per rank, three heads.
        var input: [Float] = [], groups: [[Int]] = []
        for sample in kernels {
            groups.append(Array(input.count / f ..< input.count / f + sample.tables.count))
            for t in sample.tables { input += features[sample.task][t * f ..< (t + 1) * f] }
        }
        let embedded = table.forward(input, rows: input.count / f)
        let sums = groupSums(embedded, width: width, groups: groups)
        var sumGradient = [Float](repeating: 0, count: sums.count)
        for (h, head) in kernelHeads.enumerated() {
            let rankAware = h == 2
            let headInput = rankAware ? Self.withRanks(sums, ranks: kernels.map(\.ranks)) : sums
            let predicted = head.forward(headInput, rows: kernels.count)
            let targets = kernels.map { Float([$0.cost.forward, $0.cost.backward, $0.cost.communication][h]) }
            let (loss, gradient) = Self.squaredError(predicted, targets)
            losses.append(loss)
            let inputGradient = head.backward(headInput, outputGradient: gradient, rows: kernels.count)
            for (j, g) in (rankAware ? Self.withoutRanks(inputGradient, rows: kernels.count) : inputGradient).enumerated() { sumGradient[j] += g }
        }
        table.backward(input, outputGradient: Self.scatter(sumGradient, width: width, groups: groups, rows: embedded.count / width),
                       rows: embedded.count / width, wantInputGradient: false)
        // Plans: embed every table, sum per rank, max over ranks, the overall head.
        input = []
        var rankGroups: [[Int]] = []
        for sample in plans {
            for tables in sample.tablesByRank {
                rankGroups.append(Array(input.count / f ..< input.count / f + tables.count))
                for t in tables { input += features[sample.task][t * f ..< (t + 1) * f] }
            }
        }
        let planEmbedded = table.forward(input, rows: input.count / f)
        let rankSums = groupSums(planEmbedded, width: width, groups: rankGroups)
        var maxima: [Float] = [], argmax: [Int] = [], first = 0
        for sample in plans {
            let ranks = sample.tablesByRank.count
            let (values, which) = Self.rankMax(Array(rankSums[first * width ..< (first + ranks) * width]))
            maxima += values
            argmax += which.map { first + $0 }
            first += ranks
        }
        let overallInput = Self.withRanks(maxima, ranks: plans.map(\.tablesByRank.count))
        let predicted = overallHead.forward(overallInput, rows: plans.count)
        let (loss, gradient) = Self.squaredError(predicted, plans.map { Float($0.cost) })
        losses.append(loss)
        let maxGradient = Self.withoutRanks(overallHead.backward(overallInput, outputGradient: gradient, rows: plans.count), rows: plans.count)
        var rankGradient = [Float](repeating: 0, count: rankSums.count)
        for (k, g) in maxGradient.enumerated() { rankGradient[argmax[k] * width + k % width] += g }
        table.backward(input, outputGradient: Self.scatter(rankGradient, width: width, groups: rankGroups, rows: planEmbedded.count / width),
                       rows: planEmbedded.count / width, wantInputGradient: false)
        parameters.step(&adam)
        return losses
    }

    /// Mean squared error and its gradient.
    static func squaredError(_ predicted: [Float], _ targets: [Float]) -> (Double, [Float]) {
        var loss = 0.0
        let gradient = zip(predicted, targets).map { p, y in
            loss += Double((p - y) * (p - y))
            return 2 * (p - y) / Float(predicted.count)
        }
        return (loss / Double(max(predicted.count, 1)), gradient)
    }

    /// Each group's gradient copied to every row of the group: the gradient of a sum.
    static func scatter(_ gradient: [Float], width: Int, groups: [[Int]], rows: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * width)
        for (g, members) in groups.enumerated() {
            for i in members { for j in 0..<width { out[i * width + j] += gradient[g * width + j] } }
        }
        return out
    }
}
