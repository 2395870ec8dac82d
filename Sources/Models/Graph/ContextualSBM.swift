/// A contextual stochastic block model: balanced random classes (so node ids carry no
/// locality), edges that stay within a class with probability `homophily`, and Gaussian
/// features around a random mean per class.
public struct ContextualSBM: Sendable, Hashable {
    public var nodeCount = 20_000
    public var classCount = 8
    public var averageDegree = 20.0
    public var homophily = 0.8
    public var featureCount = 128
    /// Per-feature scale of the class means against unit noise.
    public var signalToNoise = 0.15
    /// Fractions of nodes for training and validation; the rest are test nodes.
    public var trainFraction = 0.1
    public var validationFraction = 0.1
    public var seed: UInt64 = 0

    public init() {}

    public func generate() -> Graph {
        let n = nodeCount
        var rng = SplitMix64(seed: seed, stream: "csbm-classes")
        let labels = (0..<n).map { _ in Int32(rng.nextInt(below: classCount)) }
        var members = [[Int32]](repeating: [], count: classCount)
        for (node, label) in labels.enumerated() { members[Int(label)].append(Int32(node)) }

        var edgeRNG = SplitMix64(seed: seed, stream: "csbm-edges")
        let edgeTarget = Int((Double(n) * averageDegree / 2).rounded())
        var edges: [(Int32, Int32)] = []
        edges.reserveCapacity(edgeTarget)
        for _ in 0..<edgeTarget {
            let u = edgeRNG.nextInt(below: n)
            let own = Int(labels[u])
            var other = own
            if classCount > 1 && edgeRNG.nextDouble() >= homophily {
                other = (own + 1 + edgeRNG.nextInt(below: classCount - 1)) % classCount
            }
            let candidates = members[other]
            guard !candidates.isEmpty else { continue }
            let v = candidates[edgeRNG.nextInt(below: candidates.count)]
            if Int(v) != u { edges.append((Int32(u), v)) }
        }

        var featureRNG = SplitMix64(seed: seed, stream: "csbm-features")
        let means = (0..<(classCount * featureCount)).map { _ in Float(featureRNG.nextGaussian() * signalToNoise) }
        var features = [Float](repeating: 0, count: n * featureCount)
        for node in 0..<n {
            let mean = Int(labels[node]) * featureCount
            for c in 0..<featureCount {
                features[node * featureCount + c] = means[mean + c] + Float(featureRNG.nextGaussian())
            }
        }

        var splitRNG = SplitMix64(seed: seed, stream: "csbm-split")
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, splitRNG.nextInt(below: i + 1)) }
        var roles = [NodeRole](repeating: .test, count: n)
        let trainCount = Int(Double(n) * trainFraction), validationCount = Int(Double(n) * validationFraction)
        for node in order.prefix(trainCount) { roles[node] = .train }
        for node in order.dropFirst(trainCount).prefix(validationCount) { roles[node] = .validation }
        return Graph(nodeCount: n, edges: edges, features: features, featureCount: featureCount,
                     labels: labels, classCount: classCount, roles: roles)
    }
}
