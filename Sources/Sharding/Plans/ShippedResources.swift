import Foundation

/// Where the files that ship with MPITrain (cost models, all-to-all calibrations, the speed
/// reference) are found, so that a binary copied or installed away from its build still plans.
///
/// The places searched, first match wins:
/// 1. `$MPITRAIN_RESOURCES`, when set (then the only place: a set variable is a decision);
/// 2. `mpitrain-resources/` beside the executable (a binary copied with its folder);
/// 3. `PREFIX/share/mpitrain/` when the executable is `PREFIX/bin/mpitrain` (`launch install`);
/// 4. `Sources/Sharding/Resources/` of the source tree the binary was built from.
public enum ShippedResources {
    /// The directories searched, in order, each with how it was chosen.
    public static var searchPath: [(directory: String, reason: String)] {
        if let chosen = ProcessInfo.processInfo.environment["MPITRAIN_RESOURCES"], !chosen.isEmpty {
            return [(chosen, "MPITRAIN_RESOURCES")]
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let sourceTree = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Resources")
        return [
            (executable.appendingPathComponent("mpitrain-resources").path, "beside the executable"),
            (executable.deletingLastPathComponent().appendingPathComponent("share/mpitrain").path, "install prefix"),
            (sourceTree.path, "source tree of this build"),
        ]
    }

    /// The first directory of the search path that holds any file `matching`, and those files' paths, sorted.
    /// - Throws: `PlanError` naming `kind` and every directory searched.
    public static func files(kind: String, matching: (String) -> Bool) throws(PlanError) -> [String] {
        let places = searchPath
        for place in places {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: place.directory) else { continue }
            let found = names.filter(matching).sorted()
            if !found.isEmpty { return found.map { place.directory + "/" + $0 } }
        }
        let searched = places.map { "\($0.directory) (\($0.reason))" }.joined(separator: ", ")
        throw PlanError("no \(kind) found: searched \(searched); set MPITRAIN_RESOURCES to a directory that holds "
                        + "the shipped files, or install with `./launch install PREFIX`")
    }

    /// The path of the resource `name`.json; `kind` names it in the error.
    public static func file(_ name: String, kind: String) throws(PlanError) -> String {
        try files(kind: "\(kind) (\(name).json)") { $0 == name + ".json" }[0]
    }
}

/// A directory of cost artefacts laid out as the shipped ones: what `costs calibrate` writes and
/// `MPITRAIN_RESOURCES` points the planners at.
public enum CostSet {
    /// Throws unless `directory` is absent, empty or an earlier cost set: a set never replaces
    /// a directory of other files.
    public static func checkReplaceable(_ directory: String) throws(PlanError) {
        if let present = try? FileManager.default.contentsOfDirectory(atPath: directory), !present.isEmpty,
           !present.contains("neuroshard-cost-model.json") {
            throw PlanError("\(directory): holds other files; give a new directory or an earlier cost set to replace")
        }
    }

    /// Writes a set into `directory`: `write` fills a staging directory beside it, the shipped
    /// files it did not write are copied in, and only then does the staging directory replace
    /// `directory`. A failure on the way leaves `directory` as it was. Returns the names of the
    /// files copied as shipped.
    public static func write(into directory: String, _ write: (_ staging: String) throws -> Void) throws -> [String] {
        let manager = FileManager.default
        try checkReplaceable(directory)
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let staging = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).partial-\(getpid())").path
        try? manager.removeItem(atPath: staging)
        try manager.createDirectory(atPath: staging, withIntermediateDirectories: true)
        do {
            try write(staging)
            var copied: [String] = []
            for source in try ShippedResources.files(kind: "shipped cost files", matching: { $0.hasSuffix(".json") }) {
                let name = URL(fileURLWithPath: source).lastPathComponent
                guard !manager.fileExists(atPath: staging + "/" + name) else { continue }
                try manager.copyItem(atPath: source, toPath: staging + "/" + name)
                copied.append(name)
            }
            let previous = staging + ".previous"
            let replacing = manager.fileExists(atPath: directory)
            if replacing { try manager.moveItem(atPath: directory, toPath: previous) }
            do {
                try manager.moveItem(atPath: staging, toPath: directory)
            } catch {
                if replacing { try? manager.moveItem(atPath: previous, toPath: directory) }
                throw error
            }
            try? manager.removeItem(atPath: previous)
            return copied
        } catch {
            try? manager.removeItem(atPath: staging)
            throw error
        }
    }
}
