import Foundation

/// Quality of click predictions: mean log loss, accuracy at 0.5, ROC AUC and normalised
/// entropy (log loss over the entropy of the base click rate).
public struct BinaryMetrics: Codable, Hashable, Sendable {
    public var count: Int
    public var loss: Double
    public var accuracy: Double
    /// Nil when the labels are all of one class.
    public var auc: Double?
    /// Nil when the labels are all of one class.
    public var normalizedEntropy: Double?

    public init(logits: [Float], labels: [Float]) {
        precondition(logits.count == labels.count, "\(logits.count) logits for \(labels.count) labels")
        count = logits.count
        var loss = 0.0, correct = 0, positives = 0.0
        for (z, y) in zip(logits, labels) {
            loss += Double(BinaryCrossEntropy.loss(logit: z, label: y))
            if (z > 0) == (y > 0.5) { correct += 1 }
            positives += Double(y)
        }
        let n = Double(max(count, 1))
        self.loss = loss / n
        accuracy = Double(correct) / n
        auc = Self.rocAUC(scores: logits, labels: labels)
        let rate = positives / n
        let entropy = rate > 0 && rate < 1 ? -(rate * log(rate) + (1 - rate) * log(1 - rate)) : 0
        normalizedEntropy = entropy > 0 ? self.loss / entropy : nil
    }

    /// Exact ROC AUC by sorting (the Mann-Whitney U statistic): tied scores share their mean
    /// rank, so a tie between a positive and a negative counts one half.
    public static func rocAUC(scores: [Float], labels: [Float]) -> Double? {
        var positives = 0.0, rankSum = 0.0
        for (rank, label) in zip(fractionalRanks(scores), labels) where label > 0.5 {
            positives += 1
            rankSum += rank + 1
        }
        let negatives = Double(scores.count) - positives
        guard positives > 0, negatives > 0 else { return nil }
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
    }
}
