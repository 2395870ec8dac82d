import Foundation
import Models

/// Model files: JSON with a `formatVersion` that is checked before anything else is decoded,
/// and the ones trained on this machine that ship in the package's resources.
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

    /// The path of the shipped resource `name`.json; `kind` names it in the error.
    static func shipped(_ name: String, kind: String) throws(PlanError) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json") else {
            throw PlanError("no \(kind) ships with this build")
        }
        return url.path
    }
}
