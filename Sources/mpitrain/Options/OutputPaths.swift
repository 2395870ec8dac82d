import Foundation

/// Checks, before a run starts, that what it will write can be written: a run must not
/// fail after its last step for want of a directory.
enum OutputPaths {
    /// `path` can be created or replaced: it is writable, or it is absent from a writable directory.
    static func checkFile(_ path: String, _ what: String) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else { throw CommandError("\(path): a directory; the \(what) is a file") }
            guard manager.isWritableFile(atPath: path) else { throw CommandError("\(path): cannot write the \(what) there (not writable)") }
            return
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard manager.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CommandError("\(path): cannot write the \(what) there (no directory \(parent))")
        }
        guard manager.isWritableFile(atPath: parent) else { throw CommandError("\(path): cannot write the \(what) there (\(parent) is not writable)") }
    }

    /// `path` is a writable directory, or can be created as one.
    static func checkDirectory(_ path: String, _ what: String) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CommandError("\(path): not a directory; the \(what) is one") }
            guard manager.isWritableFile(atPath: path) else { throw CommandError("\(path): cannot write the \(what) there (not writable)") }
            return
        }
        var ancestor = URL(fileURLWithPath: path).deletingLastPathComponent()
        while !manager.fileExists(atPath: ancestor.path) && ancestor.path != "/" { ancestor.deleteLastPathComponent() }
        guard manager.fileExists(atPath: ancestor.path, isDirectory: &isDirectory), isDirectory.boolValue,
              manager.isWritableFile(atPath: ancestor.path) else {
            throw CommandError("\(path): cannot create the \(what) there (\(ancestor.path) is not a writable directory)")
        }
    }
}
