/// Spearman's rank correlation of two equally long lists: the Pearson correlation of their
/// ranks, tied values sharing the mean of their ranks. 0 when either list is constant.
public func spearman(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "spearman of lists of \(a.count) and \(b.count) values")
    let (x, y) = (fractionalRanks(a), fractionalRanks(b))
    let n = Double(x.count), meanX = x.reduce(0, +) / n, meanY = y.reduce(0, +) / n
    let covariance = zip(x, y).reduce(0) { $0 + ($1.0 - meanX) * ($1.1 - meanY) }
    let varianceX = x.reduce(0) { $0 + ($1 - meanX) * ($1 - meanX) }, varianceY = y.reduce(0) { $0 + ($1 - meanY) * ($1 - meanY) }
    return varianceX > 0 && varianceY > 0 ? covariance / (varianceX * varianceY).squareRoot() : 0
}

/// Each value's rank from 0, ties given the mean of the ranks they span.
func fractionalRanks<Value: Comparable>(_ values: [Value]) -> [Double] {
    let order = values.indices.sorted { values[$0] < values[$1] }
    var ranks = [Double](repeating: 0, count: values.count), i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
        for k in i...j { ranks[order[k]] = Double(i + j) / 2 }
        i = j + 1
    }
    return ranks
}
