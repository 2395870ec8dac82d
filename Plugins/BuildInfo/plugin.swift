import Foundation
import PackagePlugin

/// Stamps the executable with the commit it is built from: before every build, writes
/// `BuildInfo.swift` (`enum BuildInfo { static let commit: String; static let localChanges: Bool }`)
/// from `git`, rewriting it only when the commit or the state of the work tree changed, so an
/// unchanged tree does not recompile.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            changes=false
            [ "$commit" != unknown ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null)" ] && changes=true
            mkdir -p "$2"
            text="enum BuildInfo { static let commit = \\"$commit\\"; static let localChanges = $changes }"
            [ "$(cat "$2/BuildInfo.swift" 2>/dev/null)" = "$text" ] || printf '%s\\n' "$text" > "$2/BuildInfo.swift"
            """
        return [.prebuildCommand(
            displayName: "Stamping mpitrain with its commit",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "stamp", context.package.directoryURL.path, output.path],
            outputFilesDirectory: output)]
    }
}
