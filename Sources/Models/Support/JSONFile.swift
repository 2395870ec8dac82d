import Foundation

/// Writes command output files atomically: a temporary file beside the target, then a rename,
/// so an interrupted or failed run never leaves a half-written file over a good one.
public enum JSONFile {
    public static func write<T: Encodable>(_ value: T, to path: String) throws(ConfigError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(value) } catch { throw ConfigError("\(path): cannot encode (\(error))") }
        try writeAtomically(data, to: path)
    }

    public static func writeAtomically(_ data: Data, to path: String) throws(ConfigError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw ConfigError("\(path): directory \(directory.path) does not exist")
        }
        // A device or a pipe (`--out /dev/null`, `--out /dev/stdout`) is written into, never replaced.
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT != S_IFREG, status.st_mode & S_IFMT != S_IFDIR {
            guard let handle = FileHandle(forWritingAtPath: path) else { throw ConfigError("\(path): cannot open for writing") }
            defer { try? handle.close() }
            do { try handle.write(contentsOf: data) } catch { throw ConfigError("\(path): cannot write (\(error.localizedDescription))") }
            return
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try data.write(to: temporary)
            if rename(temporary.path, url.path) != 0 {
                throw ConfigError("\(path): cannot replace the file (\(String(cString: strerror(errno))))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error as? ConfigError ?? ConfigError("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}

/// Names what is wrong in a JSON document the way a user can act on: the field and its path.
public enum JSONProblem {
    public static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the document" : String(keys.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context):
            let at = path(context)
            return "missing field \"\(key.stringValue)\"" + (at == "the document" ? "" : " in \(at)")
        case .typeMismatch(let type, let context): return "\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)): expected \(type), found null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
