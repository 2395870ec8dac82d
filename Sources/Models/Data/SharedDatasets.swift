import Foundation

/// Finds the public data sets that sit beside a clone (`../shared/datasets/<name>`), never
/// part of the repository: from `MPITRAIN_DATASETS`, then upwards from the working directory
/// and from this source file. Nil when absent (a bare clone), so callers can skip with a reason.
public enum SharedDatasets {
    public static func directory(_ name: String) -> String? {
        let manager = FileManager.default
        var roots: [URL] = []
        if let override = ProcessInfo.processInfo.environment["MPITRAIN_DATASETS"] {
            roots.append(URL(fileURLWithPath: override))
        }
        for start in [URL(fileURLWithPath: manager.currentDirectoryPath), URL(fileURLWithPath: #filePath).deletingLastPathComponent()] {
            var directory = start.standardizedFileURL
            while directory.path != "/" {
                roots.append(directory.appendingPathComponent("shared/datasets"))
                roots.append(directory.deletingLastPathComponent().appendingPathComponent("shared/datasets"))
                directory.deleteLastPathComponent()
            }
        }
        for root in roots {
            let candidate = root.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            if manager.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue {
                return candidate.standardizedFileURL.path
            }
        }
        return nil
    }
}
