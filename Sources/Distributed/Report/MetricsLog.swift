import Foundation
import Models
import Sharding

/// The records of a `--metrics` file of `mpitrain dlrm` or `gnn`, one JSON object per line,
/// read leniently so that files of older and newer builds still chart: lines of unknown kinds,
/// unknown fields, and records without what a chart needs are passed over. A line that is not
/// a JSON object is an error naming the file and line.
public struct MetricsLog: Sendable {
    /// The run's settings, from the `config` record that opens the file.
    public struct Config: Sendable {
        public var command: String?
        /// The command line as typed, after `mpitrain`.
        public var arguments: [String]?
        /// The build that ran.
        public var version: String?
        public var ranks: Int?
        /// Options as text, in name order (arrays joined by spaces, flags `true` or `false`).
        public var options: [(name: String, value: String)] = []
        /// The plan, as indented JSON.
        public var plan: String?
        /// Each rank's embedding and communication time per step as the plan's cost model predicts them.
        public var predicted: [RankCost]?
    }

    /// A `train` record of `mpitrain dlrm`: means over the steps since the previous one.
    public struct Train: Decodable, Sendable {
        public var step: Int
        public var loss: Double?
        public var samplesPerSecond: Double?
        /// Each rank's phase times per step.
        public var ranks: [RankPhases]

        private enum Key: String, CodingKey { case step, loss, samplesPerSecond, ranks }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            step = try c.decode(Int.self, forKey: .step)
            loss = c.lenient(.loss)
            samplesPerSecond = c.lenient(.samplesPerSecond)
            ranks = c.lenient(.ranks) ?? []
        }
    }

    /// An `eval` record of `mpitrain dlrm`: the held-out figures at a step.
    public struct Eval: Decodable, Sendable {
        public var step: Int
        public var metrics: BinaryMetrics
    }

    public var config: Config?
    public var train: [Train] = []
    public var eval: [Eval] = []
    /// The `epoch` records of `mpitrain gnn`.
    public var epochs: [GNNEpochReport] = []
    /// The `time` of the first and last records kept (the config record included).
    public var timeSpan: (first: String, last: String)?

    /// Reads the file at `path`.
    public init(path: String) throws(ConfigError) {
        let data = try Self.contents(of: path, "metrics file")
        let decoder = JSONDecoder()
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { ![0x20, 0x09, 0x0d].contains($0) }) else { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: line) } catch { throw Self.notJSON(error, in: line, path: path, firstLine: index + 1) }
            guard let record = object as? [String: Any] else { throw ConfigError("\(path):\(index + 1): not a JSON object") }
            switch record["kind"] as? String {
            case "config": config = Config(record, predicted: (try? decoder.decode(Prediction.self, from: line))?.predicted?.ranks)
            case "train": if let train = try? decoder.decode(Train.self, from: line) { self.train.append(train) } else { continue }
            case "eval": if let eval = try? decoder.decode(Eval.self, from: line) { self.eval.append(eval) } else { continue }
            case "epoch": if let epoch = try? decoder.decode(GNNEpochReport.self, from: line) { epochs.append(epoch) } else { continue }
            default: continue
            }
            if let time = record["time"] as? String { timeSpan = (timeSpan?.first ?? time, time) }
        }
    }

    /// The bytes of the file at `path`, or an error a user can act on.
    static func contents(of path: String, _ what: String) throws(ConfigError) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ConfigError("\(path): no such \(what)") }
        guard !isDirectory.boolValue else { throw ConfigError("\(path): a directory, not a \(what)") }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigError("\(path): cannot read the \(what) (\(error.localizedDescription))")
        }
    }

    /// Where and why JSONSerialization found `data` (starting at line `firstLine` of `path`) not
    /// to be JSON: `path:line: not JSON (reason at column c)`.
    static func notJSON(_ error: Error, in data: Data, path: String, firstLine: Int) -> ConfigError {
        var reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        var offset = data.count
        if let match = reason.range(of: #" around character \d+"#, options: .regularExpression) {
            offset = min(Int(reason[match].split(separator: " ").last!)!, data.count)
            reason.removeSubrange(match)
        }
        if reason.hasSuffix(".") { reason.removeLast() }
        let before = data.prefix(offset)
        let line = firstLine + before.count { $0 == UInt8(ascii: "\n") }
        let column = before.count - (before.lastIndex(of: UInt8(ascii: "\n")).map { before.distance(from: before.startIndex, to: $0) + 1 } ?? 0) + 1
        return ConfigError("\(path):\(line): not JSON (\(reason.prefix(1).lowercased() + reason.dropFirst()) at column \(column))")
    }
}

/// The `predicted` cost of a config record.
private struct Prediction: Decodable {
    var predicted: PlanCost?
}

extension MetricsLog.Config {
    /// Reads the command, its arguments, the build, ranks, options and plan, whatever else the
    /// record holds; `predicted` is its prediction, decoded apart.
    init(_ record: [String: Any], predicted: [RankCost]?) {
        self.predicted = predicted
        command = record["command"] as? String
        arguments = record["arguments"] as? [String]
        version = record["version"] as? String
        ranks = record["ranks"] as? Int
        func text(_ value: Any) -> String? {
            switch value {
            case let string as String: string
            case let number as NSNumber where type(of: number) == type(of: NSNumber(value: true)): number.boolValue ? "true" : "false"
            case let number as NSNumber: "\(number)"
            case let array as [Any]: array.compactMap(text).joined(separator: " ")
            default: nil
            }
        }
        options = ((record["options"] as? [String: Any]) ?? [:]).compactMap { name, value in text(value).map { (name, $0) } }.sorted { $0.name < $1.name }
        plan = record["plan"].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.prettyPrinted, .sortedKeys]) }
            .map { String(decoding: $0, as: UTF8.self) }
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or nil when it is absent or not a `T`: reports read what they know.
    func lenient<T: Decodable>(_ key: Key) -> T? { (try? decodeIfPresent(T.self, forKey: key)) ?? nil }
}
