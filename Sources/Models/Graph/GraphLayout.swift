import Foundation

/// The file layouts a graph directory may hold, told apart by their files: LINQS
/// (`<name>.content` and `<name>.cites`), OGB node property prediction (`raw/edge.csv[.gz]`)
/// and NumPy arrays (`features.npy`).
public enum GraphLayout: Equatable, Sendable {
    case linqs(name: String)
    case ogb
    case numpy

    /// The layout of `directory`, or an error naming what was looked for.
    public static func detect(_ directory: String) throws(DatasetError) -> GraphLayout {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw DatasetError(path: directory, line: 0, reason: "no such directory")
        }
        guard isDirectory.boolValue else { throw DatasetError(path: directory, line: 0, reason: "a file; a graph is a directory of files") }
        // LINQS: `<directory name>.content`, else the one `.content` file with a `.cites` beside it.
        let own = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
        let stems = ((try? manager.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".content") }
            .map { String($0.dropLast(".content".count)) }
            .filter { manager.fileExists(atPath: GraphText.path(directory, "\($0).cites")) }
        if stems.contains(own) { return .linqs(name: own) }
        if stems.count == 1 { return .linqs(name: stems[0]) }
        if GraphText.existing(GraphText.path(directory, "raw", "edge.csv")) != nil { return .ogb }
        if manager.fileExists(atPath: GraphText.path(directory, "features.npy")) { return .numpy }
        throw DatasetError(path: directory, line: 0, reason: "no graph layout found: looked for <name>.content with <name>.cites (LINQS), "
                           + "raw/edge.csv or raw/edge.csv.gz (OGB) and features.npy (NumPy)")
    }

    /// Reads the graph in `directory`, which holds this layout.
    public func read(_ directory: String, options: GraphReadOptions) throws(DatasetError) -> LoadedGraph {
        if let split = options.split, self != .ogb {
            throw DatasetError(path: directory, line: 0, reason: "--split \(split) picks one of an OGB directory's split/<name>; this is \(name) data")
        }
        return switch self {
        case .linqs(let name): try LINQSReader.read(directory: directory, name: name, options: options)
        case .ogb: try OGBReader.read(directory: directory, options: options)
        case .numpy: try NumPyReader.read(directory: directory, options: options)
        }
    }

    public var name: String {
        switch self {
        case .linqs: "LINQS"
        case .ogb: "OGB"
        case .numpy: "NumPy"
        }
    }
}
