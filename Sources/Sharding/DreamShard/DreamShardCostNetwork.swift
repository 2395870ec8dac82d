import Foundation
import Models

/// DreamShard's cost network (Zha et al., NeurIPS 2022): a per-table MLP over the 21 features;
/// a rank's embedding is the sum over its tables; three heads predict the rank's forward,
/// backward and communication milliseconds, and a fourth predicts the step's cost from the
/// elementwise max of the ranks' embeddings. It works for any number of tables and ranks.
public final class DreamShardCostNetwork {
    static let tableSizes = [DreamShardFeatures.count, 128, 32]
    static let headSizes = [32, 64, 1]
    static var width: Int { tableSizes.last! }

    let parameters: ParameterBuffer
    let table: MLP
    /// Forward, backward and communication heads, in that order.
    let kernelHeads: [MLP]
    let overallHead: MLP

    init(seed: UInt64) {
        let tableCount = MLP.parameterCount(sizes: Self.tableSizes), headCount = MLP.parameterCount(sizes: Self.headSizes)
        let parameters = ParameterBuffer(count: tableCount + 4 * headCount)
        self.parameters = parameters
        table = MLP(sizes: Self.tableSizes, reluOnLast: true, parameters: parameters, offset: 0)
        kernelHeads = (0..<3).map { MLP(sizes: Self.headSizes, reluOnLast: false, parameters: parameters, offset: tableCount + $0 * headCount) }
        overallHead = MLP(sizes: Self.headSizes, reluOnLast: false, parameters: parameters, offset: tableCount + 3 * headCount)
        var random = SplitMix64(seed: seed, stream: "dreamshard-cost-network")
        for mlp in [table] + kernelHeads + [overallHead] { mlp.initialize(&random) }
    }

    /// Table embeddings, (tables, width), of features (tables, 21).
    func embed(_ features: [Float]) -> [Float] {
        table.forward(features, rows: features.count / DreamShardFeatures.count)
    }

    /// Predicted forward, backward and communication of ranks whose summed embeddings are
    /// `sums` (ranks, width).
    func kernels(_ sums: [Float]) -> [RankCost] {
        let rows = sums.count / Self.width
        let heads = kernelHeads.map { $0.forward(sums, rows: rows) }
        return (0..<rows).map { RankCost(forward: Double(heads[0][$0]), backward: Double(heads[1][$0]), communication: Double(heads[2][$0])) }
    }

    /// Predicted step cost of plans, each given as its ranks' summed embeddings.
    func overall(_ plans: [[Float]]) -> [Double] {
        let maxima = plans.flatMap { Self.rankMax($0).values }
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

    /// One measured rank: its tables (indices into its task) and the oracle's times.
    struct KernelSample {
        var task: Int
        var tables: [Int]
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
            let predicted = head.forward(sums, rows: kernels.count)
            let targets = kernels.map { Float([$0.cost.forward, $0.cost.backward, $0.cost.communication][h]) }
            let (loss, gradient) = Self.squaredError(predicted, targets)
            losses.append(loss)
            for (j, g) in head.backward(sums, outputGradient: gradient, rows: kernels.count).enumerated() { sumGradient[j] += g }
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
        let predicted = overallHead.forward(maxima, rows: plans.count)
        let (loss, gradient) = Self.squaredError(predicted, plans.map { Float($0.cost) })
        losses.append(loss)
        let maxGradient = overallHead.backward(maxima, outputGradient: gradient, rows: plans.count)
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
