import Foundation
import Models

/// Model files: JSON with a `formatVersion` that is checked before anything else is decoded.
enum VersionedFile {
    private struct Version: Decodable { let formatVersion: Int }

    /// Decodes `path` as `type` after checking its version; `kind` names the file in errors.
    static func read<T: Decodable>(_ type: T.Type, from path: String, kind: String, formatVersion: Int) throws(PlanError) -> T {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let version = try JSONDecoder().decode(Version.self, from: data).formatVersion
            guard version == formatVersion else {
                throw PlanError("\(path): \(kind) format version \(version); this build reads version \(formatVersion)")
            }
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as PlanError {
            throw error
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile || error.code == .fileReadUnknown {
            throw PlanError("\(path): cannot read the \(kind)")
        } catch {
            throw PlanError("\(path): not a \(kind) (\(JSONProblem.describe(error)))")
        }
    }
}
