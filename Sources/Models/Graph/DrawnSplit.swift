/// The split given to a graph whose files carry none, whatever their layout: within each class,
/// 60% of the nodes train, 20% validate and 20% test, drawn from `seed`. Every class of at least
/// one node trains on one, and one of at least three nodes has one of each role, so small
/// graphs get a test set too (a Planetoid-style 20 per class, 500, 1,000 leaves none below
/// 1,520 nodes). Unlabelled nodes stay unlabelled.
public enum DrawnSplit {
    public static let description = "per class 60% train, 20% validation, 20% test"

    /// Roles for nodes labelled `labels` (negative: unlabelled), the same for the same seed.
    public static func roles(labels: [Int32], classCount: Int, seed: UInt64) -> [NodeRole] {
        var sizes = [Int](repeating: 0, count: classCount)
        for label in labels where label >= 0 { sizes[Int(label)] += 1 }
        // Per class, how many of its nodes validate and test; the rest train.
        let validation = sizes.map { n in n >= 3 ? max(1, (Double(n) * 0.2).rounded()) : 0 }.map(Int.init)
        let test = sizes.map { n in n >= 2 ? max(1, (Double(n) * 0.2).rounded()) : 0 }.map(Int.init)
        var generator = SplitMix64(seed: seed, stream: "split")
        var order = Array(labels.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, generator.nextInt(below: i + 1)) }
        var roles = [NodeRole](repeating: .unlabelled, count: labels.count)
        var seen = [Int](repeating: 0, count: classCount)
        for node in order where labels[node] >= 0 {
            let c = Int(labels[node])
            roles[node] = seen[c] < test[c] ? .test : seen[c] < test[c] + validation[c] ? .validation : .train
            seen[c] += 1
        }
        return roles
    }
}
