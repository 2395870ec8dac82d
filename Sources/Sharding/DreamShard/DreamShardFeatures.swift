import Foundation

/// DreamShard's 21 table features: dim, rows, pooling factor, size and the 17 reuse bins.
/// Rows, pooling and size are standardised as in the paper's code, of their logarithms (they
/// span decades), with the mean and spread of the training tasks' tables kept in the model:
/// standardising within each task, as the paper's code does, hides a task's absolute sizes,
/// which the measured costs depend on. Dim is divided by 128; the bins are fractions already.
public enum DreamShardFeatures {
    public static let count = 4 + ReuseBins.count
    /// Names the feature set in model files, so a model trained on other features is refused.
    public static let signature = "dim/128, standardised log rows, log pooling and log bytes, 17 reuse bins"

    /// Mean and standard deviation of log rows, log(1 + pooling) and log bytes.
    public struct Normalisation: Codable, Hashable, Sendable {
        public var mean: [Double]
        public var std: [Double]

        /// The statistics of every table of `tasks`.
        public init(fitting tasks: [PlanningTask]) {
            let logs = tasks.flatMap { task in task.tables.indices.map { Self.logs(task, $0) } }
            mean = (0..<3).map { k in logs.reduce(0) { $0 + $1[k] } / Double(max(logs.count, 1)) }
            std = (0..<3).map { [mean] k in
                max((logs.reduce(0) { $0 + ($1[k] - mean[k]) * ($1[k] - mean[k]) } / Double(max(logs.count, 1))).squareRoot(), 1e-6)
            }
        }

        static func logs(_ task: PlanningTask, _ i: Int) -> [Double] {
            [log(Double(task.tables[i].rows)), log(1 + task.tables[i].poolingFactor), log(Double(task.bytes(ofTable: i)))]
        }
    }

    /// (tables, `count`) features of `task`'s tables, row-major.
    public static func of(_ task: PlanningTask, _ normalisation: Normalisation) -> [Float] {
        var features = [Float](repeating: 0, count: task.tables.count * count)
        for (i, table) in task.tables.enumerated() {
            features[i * count] = Float(table.dim) / 128
            for (k, value) in Normalisation.logs(task, i).enumerated() {
                features[i * count + 1 + k] = Float((value - normalisation.mean[k]) / normalisation.std[k])
            }
            for (k, fraction) in table.bins.fractions.enumerated() { features[i * count + 4 + k] = Float(fraction) }
        }
        return features
    }
}
