import Foundation
import Models

/// DreamShard's policy network: at each step of a placement, a score for every legal rank from
/// the summed embeddings of the tables it would then hold (a per-table MLP of its own; the sum
/// is scaled by ranks / tables, so tasks of other sizes and rank counts look alike) and from
/// the cost network's predicted forward, backward and communication of that rank (through a
/// small MLP); a softmax over the legal ranks gives the action probabilities.
public final class DreamShardPolicy {
    static let tableSizes = [DreamShardFeatures.count, 128, 32]
    static let costSizes = [3, 64, 32]
    static let scoreSizes = [64, 1]

    let parameters: ParameterBuffer
    let table: MLP
    let cost: MLP
    let score: MLP

    init(seed: UInt64) {
        let tableCount = MLP.parameterCount(sizes: Self.tableSizes), costCount = MLP.parameterCount(sizes: Self.costSizes)
        parameters = ParameterBuffer(count: tableCount + costCount + MLP.parameterCount(sizes: Self.scoreSizes))
        table = MLP(sizes: Self.tableSizes, reluOnLast: true, parameters: parameters, offset: 0)
        cost = MLP(sizes: Self.costSizes, reluOnLast: true, parameters: parameters, offset: tableCount)
        score = MLP(sizes: Self.scoreSizes, reluOnLast: false, parameters: parameters, offset: tableCount + costCount)
        var random = SplitMix64(seed: seed, stream: "dreamshard-policy")
        for mlp in [table, cost, score] { mlp.initialize(&random) }
        // Equal scores to start with: the first episodes explore every legal rank alike.
        (parameters.values + tableCount + costCount).update(repeating: 0, count: MLP.parameterCount(sizes: Self.scoreSizes))
    }

    /// Scores of candidate ranks from their table embedding sums (rows, 32) and their
    /// predicted costs (rows, 3).
    func scores(tableSums: [Float], costs: [Float]) -> [Float] {
        let rows = costs.count / 3
        let costLatent = cost.forward(costs, rows: rows)
        return score.forward(Self.concatenated(tableSums, costLatent, rows: rows), rows: rows)
    }

    static func concatenated(_ a: [Float], _ b: [Float], rows: Int) -> [Float] {
        let wa = a.count / rows, wb = b.count / rows
        var out = [Float](repeating: 0, count: rows * (wa + wb))
        for r in 0..<rows {
            for j in 0..<wa { out[r * (wa + wb) + j] = a[r * wa + j] }
            for j in 0..<wb { out[r * (wa + wb) + wa + j] = b[r * wb + j] }
        }
        return out
    }

    /// Softmax of `logits`.
    static func softmax(_ logits: ArraySlice<Float>) -> [Float] {
        let top = logits.max() ?? 0
        let e = logits.map { exp($0 - top) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    // MARK: - REINFORCE

    /// One REINFORCE step on `episodes` of `context`'s task: every step's log-probability of its action, over the same legal ranks it
    /// was sampled from, weighted by its episode's reward normalised over the batch; plus an
    /// entropy bonus. Returns the mean entropy per step.
    @discardableResult
    func reinforce(_ episodes: [PlacementEpisode], rewards: [Double], context: PlacementContext, entropyWeight: Float, adam: inout Adam) -> Double {
        let width = Self.tableSizes.last!
        // Every step carries its episode's reward, normalised over all steps of the batch.
        let stepRewards = zip(episodes, rewards).flatMap { episode, reward in [Double](repeating: reward, count: episode.steps.count) }
        guard stepRewards.count > 0 else { return 0 }
        let mean = stepRewards.reduce(0, +) / Double(stepRewards.count)
        let std = (stepRewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(stepRewards.count)).squareRoot()
        let advantages = stepRewards.map { Float(($0 - mean) / (std + 1e-8)) }
        // Rebuild every scored row: the rank's table sum with the step's table, and its costs.
        let features = context.features, scale = context.tableSumScale
        let embeddings = table.forward(features, rows: features.count / DreamShardFeatures.count)
        var sums: [Float] = [], costs: [Float] = [], members: [[Int]] = []
        for episode in episodes {
            var held = [[Int]](repeating: [], count: episode.ranks)
            for step in episode.steps {
                for r in step.legal {
                    let group = held[r] + [step.table]
                    members.append(group)
                    var sum = [Float](repeating: 0, count: width)
                    for t in group { for j in 0..<width { sum[j] += scale * embeddings[t * width + j] } }
                    sums += sum
                }
                costs += step.costs
                held[step.legal[step.action]].append(step.table)
            }
        }
        let rows = members.count
        let costLatent = cost.forward(costs, rows: rows)
        let scoreInput = Self.concatenated(sums, costLatent, rows: rows)
        let logits = score.forward(scoreInput, rows: rows)
        // d loss / d logit, step by step.
        var logitGradient = [Float](repeating: 0, count: rows)
        var first = 0, k = 0, entropy = 0.0
        let steps = Float(stepRewards.count)
        for episode in episodes {
            for step in episode.steps {
                let n = step.legal.count
                let p = Self.softmax(logits[first ..< first + n])
                let plogp = p.reduce(Float(0)) { $0 + ($1 > 0 ? $1 * log($1) : 0) }
                entropy -= Double(plogp)
                for j in 0..<n {
                    let policy = advantages[k] * (p[j] - (j == step.action ? 1 : 0))
                    let bonus = entropyWeight * p[j] * ((p[j] > 0 ? log(p[j]) : 0) - plogp)
                    logitGradient[first + j] = (policy + bonus) / steps
                }
                first += n
                k += 1
            }
        }
        let inputGradient = score.backward(scoreInput, outputGradient: logitGradient, rows: rows)
        var sumGradient = [Float](repeating: 0, count: rows * width), costGradient = [Float](repeating: 0, count: rows * width)
        for r in 0..<rows {
            for j in 0..<width {
                sumGradient[r * width + j] = scale * inputGradient[r * 2 * width + j]
                costGradient[r * width + j] = inputGradient[r * 2 * width + width + j]
            }
        }
        cost.backward(costs, outputGradient: costGradient, rows: rows, wantInputGradient: false)
        let tables = features.count / DreamShardFeatures.count
        table.backward(features, outputGradient: DreamShardCostNetwork.scatter(sumGradient, width: width, groups: members, rows: tables),
                       rows: tables, wantInputGradient: false)
        parameters.step(&adam)
        return entropy / Double(stepRewards.count)
    }
}
