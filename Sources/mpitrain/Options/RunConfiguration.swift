import ArgumentParser
import Distributed
import Foundation

/// The first record of a metrics file: what the run was asked to do. Every option of the
/// command with the value it ran with (defaults included, by the option's long name), the
/// command line as typed, the build, the ranks, and what the command adds (DLRM: the plan and
/// its predicted cost per rank).
struct RunConfiguration<Extra: Encodable>: Encodable {
    let kind = "config"
    let command: String
    let arguments: [String]
    let options: OptionValues
    let version: String
    let ranks: Int
    let extra: Extra

    init(_ command: any ParsableCommand, ranks: Int, extra: Extra) {
        self.command = type(of: command).configuration.commandName ?? "\(type(of: command))"
        arguments = Array(CommandLine.arguments.dropFirst())
        options = OptionValues(command)
        version = BuildInfo.commit + (BuildInfo.localChanges ? " with local changes" : "")
        self.ranks = ranks
        self.extra = extra
    }

    private enum Key: String, CodingKey { case kind, command, arguments, options, version, ranks }

    /// The extra fields sit beside the others, in one object.
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(command, forKey: .command)
        try container.encode(arguments, forKey: .arguments)
        try container.encode(options, forKey: .options)
        try container.encode(version, forKey: .version)
        try container.encode(ranks, forKey: .ranks)
        try extra.encode(to: encoder)
    }
}

/// The values of a parsed command's options, flags and arguments (those of its option groups
/// too), keyed by long name: `batchSize` is recorded as "batch-size".
struct OptionValues: Encodable {
    private var values: [(name: String, value: JSONValue)] = []

    init(_ command: Any) { collect(command) }

    private mutating func collect(_ arguments: Any) {
        for child in Mirror(reflecting: arguments).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            if let group = child.value as? any ParsedGroup {
                collect(group.parsedGroup)
            } else if let option = child.value as? any ParsedValue {
                values.append((Self.longName(String(label.dropFirst())), JSONValue(option.parsedValue)))
            }
        }
    }

    /// `batchSize` → `batch-size`, as ArgumentParser names options by default.
    private static func longName(_ property: String) -> String {
        property.reduce(into: "") { name, character in
            if character.isUppercase { name += "-" + character.lowercased() } else { name.append(character) }
        }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: JSONValue.Key.self)
        for (name, value) in values { try container.encode(value, forKey: JSONValue.Key(name)) }
    }
}

private protocol ParsedValue { var parsedValue: Any { get } }
extension Option: ParsedValue { var parsedValue: Any { wrappedValue } }
extension Flag: ParsedValue { var parsedValue: Any { wrappedValue } }
extension Argument: ParsedValue { var parsedValue: Any { wrappedValue } }

private protocol ParsedGroup { var parsedGroup: Any { get } }
extension OptionGroup: ParsedGroup { var parsedGroup: Any { wrappedValue } }

/// A JSON value made from an option's Swift value: numbers, strings, booleans, arrays, nil;
/// enums by their raw value; anything else by its description.
enum JSONValue: Encodable {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue])

    init(_ value: Any) {
        let mirror = Mirror(reflecting: value)
        switch value {
        case let value as Bool: self = .bool(value)
        case let value as any BinaryInteger: self = .integer(Int64(truncatingIfNeeded: value))
        // A Float by its shortest decimal, so 0.2 stays 0.2 and not 0.20000000298023224.
        case let value as Float: self = .number(Double("\(value)") ?? Double(value))
        case let value as any BinaryFloatingPoint: self = .number(Double(value))
        case let value as String: self = .string(value)
        case let value as any RawRepresentable: self = JSONValue(value.rawValue)
        default:
            switch mirror.displayStyle {
            case .optional: self = mirror.children.first.map { JSONValue($0.value) } ?? .null
            case .collection, .set: self = .array(mirror.children.map { JSONValue($0.value) })
            default: self = .string(String(describing: value))
            }
        }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): value.isFinite ? try container.encode(value) : try container.encode(String(describing: value))
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        }
    }

    struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
