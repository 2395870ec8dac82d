import Foundation
import Models

/// Where a cost artefact (a cost model, a speed reference, an all-to-all calibration) was
/// measured: what a prediction made from it assumes about the machine. The CPU, its cores and
/// caches come from the system; the bandwidths are measured when a calibration writes the
/// artefact; the MPI fields are set by what measured communication.
public struct HardwareFingerprint: Codable, Hashable, Sendable {
    /// The CPU's name and, where the name hides it (virtual machines), its family and model:
    /// "AMD EPYC (family 25, model 1)".
    public var cpu: String
    /// Online logical processors.
    public var cores: Int
    /// Cache sizes in bytes by name: "L1d", "L2", "L3".
    public var caches: [String: Int]
    /// STREAM-style copy bandwidth, bytes read plus written per second.
    public var streamCopyBytesPerSecond: Double?
    /// Random 64-byte reads over a table far larger than the caches, bytes per second.
    public var randomGatherBytesPerSecond: Double?
    /// The MPI library (`MPI_Get_library_version`), for communication calibrations.
    public var mpiLibrary: String?
    /// How ranks talked: "shared memory" on one host, else the hosts' transport.
    public var transport: String?
    public var ranksPerHost: Int?

    public init(cpu: String, cores: Int, caches: [String: Int]) {
        self.cpu = cpu
        self.cores = cores
        self.caches = caches
    }

    /// This machine's CPU, cores and caches (`read()` once).
    public static let current = read()

    /// This machine's CPU, cores and caches, read from the system: a few file reads, no
    /// measurement.
    public static func read() -> HardwareFingerprint {
        HardwareFingerprint(cpu: cpuName(), cores: ProcessInfo.processInfo.activeProcessorCount, caches: cacheSizes())
    }

    /// This machine with its bandwidths measured (about a second).
    public static func measured() -> HardwareFingerprint {
        var fingerprint = current
        fingerprint.streamCopyBytesPerSecond = MemoryBandwidth.copyBytesPerSecond()
        fingerprint.randomGatherBytesPerSecond = MemoryBandwidth.randomGatherBytesPerSecond()
        return fingerprint
    }

    /// How `other` (the machine planning) differs from this one in what sets embedding costs:
    /// the CPU, or an L2 or L3 cache more than 10% apart. Empty when they agree.
    public func differences(from other: HardwareFingerprint) -> [String] {
        var found: [String] = []
        if cpu != other.cpu { found.append("CPU \(other.cpu), not \(cpu)") }
        for level in ["L2", "L3"] {
            guard let mine = caches[level], let theirs = other.caches[level], mine > 0 else { continue }
            if abs(Double(theirs) / Double(mine) - 1) > 0.1 {
                found.append("\(level) \(ByteCount(theirs)), not \(ByteCount(mine))")
            }
        }
        return found
    }

    /// What a planner says about `kind` (an artefact measured on `measuredOn`, nil when its
    /// file predates fingerprints) on the machine `here`, and how to `remeasure` it: nil when
    /// `measuredOn` is like `here`.
    public static func note(_ kind: String, measuredOn: HardwareFingerprint?, remeasure: String,
                            here: HardwareFingerprint = .current) -> String? {
        let origin: String
        if let measuredOn {
            let differences = measuredOn.differences(from: here)
            guard !differences.isEmpty else { return nil }
            origin = "\(measuredOn.summary); this one has \(differences.joined(separator: ", "))"
        } else {
            origin = "an unknown machine (no fingerprint in its file); this one is \(here.summary)"
        }
        return "the \(kind) was measured on \(origin): predictions may be off by tens of percent per rank; \(remeasure) remeasures it here"
    }

    /// One line naming the machine: "AMD EPYC (family 25, model 1), 2 cores, L3 32.0 MiB".
    public var summary: String {
        "\(cpu), \(cores) cores" + (caches["L3"].map { ", L3 \(ByteCount($0))" } ?? "")
    }

    // MARK: - Internals

    private static func cpuName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.isEmpty || fields.count == 3 { break }
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, ["model name", "cpu family", "model"].contains(parts[0]) { fields[parts[0]] = parts[1] }
        }
        let name = fields["model name"] ?? "unknown CPU"
        guard let family = fields["cpu family"], let model = fields["model"] else { return name }
        return "\(name) (family \(family), model \(model))"
    }

    /// From sysfs (`/sys/devices/system/cpu/cpu0/cache/index*`): level, type and size of each.
    private static func cacheSizes() -> [String: Int] {
        var sizes: [String: Int] = [:]
        for index in 0..<8 {
            let directory = "/sys/devices/system/cpu/cpu0/cache/index\(index)/"
            func read(_ name: String) -> String? {
                (try? String(contentsOfFile: directory + name, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let level = read("level"), let type = read("type"), let size = read("size"), type != "Instruction" else { continue }
            let multiplier = size.hasSuffix("K") ? 1 << 10 : size.hasSuffix("M") ? 1 << 20 : 1
            guard let value = Int(size.trimmingCharacters(in: .letters)) else { continue }
            sizes["L\(level)" + (type == "Data" ? "d" : "")] = value * multiplier
        }
        return sizes
    }
}
