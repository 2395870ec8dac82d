import Foundation

/// Softmax cross-entropy over class logits, for node classification.
public enum SoftmaxCrossEntropy {
    /// Loss summed over the rows of `rows` whose `include` is true, each divided by `divisor`
    /// (the global number of such rows, so chunks and ranks add up to the mean); writes
    /// dLogits for those rows (0 for the others). logits, dLogits (N, classes).
    public static func forwardBackward(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, include: (Int) -> Bool,
        rows: Range<Int>, classes: Int, divisor: Float, dLogits: UnsafeMutablePointer<Float>
    ) -> (loss: Double, correct: Int, counted: Int) {
        var loss = 0.0
        var correct = 0, counted = 0
        for row in rows {
            let z = logits + row * classes
            let d = dLogits + row * classes
            guard include(row) else {
                d.update(repeating: 0, count: classes)
                continue
            }
            var maxLogit = z[0]
            var argmax = 0
            for c in 1..<classes where z[c] > maxLogit {
                maxLogit = z[c]
                argmax = c
            }
            var sum: Float = 0
            for c in 0..<classes {
                d[c] = exp(z[c] - maxLogit)
                sum += d[c]
            }
            let label = Int(labels[row])
            loss += Double(log(sum) - (z[label] - maxLogit)) / Double(divisor)
            for c in 0..<classes { d[c] = d[c] / sum / divisor }
            d[label] -= 1 / divisor
            if argmax == label { correct += 1 }
            counted += 1
        }
        return (loss, correct, counted)
    }

    /// Rows among `rows` selected by `include` whose largest logit is the label.
    public static func correctPredictions(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, include: (Int) -> Bool, rows: Range<Int>, classes: Int
    ) -> (correct: Int, counted: Int) {
        var correct = 0, counted = 0
        for row in rows where include(row) {
            let z = logits + row * classes
            var argmax = 0
            for c in 1..<classes where z[c] > z[argmax] { argmax = c }
            if argmax == Int(labels[row]) { correct += 1 }
            counted += 1
        }
        return (correct, counted)
    }
}
