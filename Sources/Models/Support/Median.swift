/// The median of `values` (the mean of the middle two for an even count; 0 for none): the
/// figure every timing here reports, since one slow spell of a shared machine moves a mean.
public func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
