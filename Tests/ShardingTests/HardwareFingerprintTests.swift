import Foundation
import Sharding
import TestSupport
import Testing

/// Where cost artefacts were measured, and what the planner says about it.
@Suite struct HardwareFingerprintTests {
    static let cascadeLake = HardwareFingerprint(cpu: "Intel Xeon Processor (Cascadelake) (family 6, model 85)", cores: 2,
                                                 caches: ["L1d": 32 << 10, "L2": 1 << 20, "L3": 37_486_592])

    @Test func thisMachineIsReadFromTheSystemFastAndDiffersOnlyFromOtherMachines() throws {
        let start = ContinuousClock.now
        let here = HardwareFingerprint.read()
        let note = HardwareFingerprint.note("NeuroShard cost model", measuredOn: Self.cascadeLake, remeasure: "x", here: here)
        // The check a dry run makes, well under its 50 ms budget.
        #expect(ContinuousClock.now - start < .milliseconds(50))
        #expect(here.cores >= 1 && !here.cpu.isEmpty && here.caches["L3", default: 0] > 0, "\(here)")
        #expect(here.differences(from: here).isEmpty)
        #expect(HardwareFingerprint.note("NeuroShard cost model", measuredOn: here, remeasure: "x", here: here) == nil)
        if here.cpu != Self.cascadeLake.cpu { #expect(note?.hasPrefix("the NeuroShard cost model was measured on Intel Xeon") == true, "\(note ?? "")") }
    }

    @Test func anotherCPUOrCacheIsNamedAndAnUnknownMachineSaysSo() {
        var zen = Self.cascadeLake
        zen.cpu = "AMD EPYC (family 25, model 1)"
        zen.caches["L3"] = 32 << 20
        #expect(Self.cascadeLake.differences(from: zen) == ["CPU AMD EPYC (family 25, model 1), not Intel Xeon Processor (Cascadelake) (family 6, model 85)",
                                                            "L3 32.0 MiB, not 35.8 MiB"])
        var sameButBusier = Self.cascadeLake
        sameButBusier.cores = 64
        sameButBusier.streamCopyBytesPerSecond = 1e10
        #expect(Self.cascadeLake.differences(from: sameButBusier).isEmpty)
        #expect(HardwareFingerprint.note("all-to-all calibration", measuredOn: nil, remeasure: "`mpitrain bench comm --json`", here: zen)
                == "the all-to-all calibration was measured on an unknown machine (no fingerprint in its file); this one is "
                + "AMD EPYC (family 25, model 1), 2 cores, L3 32.0 MiB: predictions may be off by tens of percent per rank; "
                + "`mpitrain bench comm --json` remeasures it here")
    }

    /// Files written before fingerprints (the shipped speed reference) load, as measured on an
    /// unknown machine; written files keep theirs.
    @Test func oldFilesLoadAsUnknownAndNewOnesKeepTheirFingerprint() throws {
        try withTemporaryDirectory("fingerprint") { directory in
            let path = directory.appendingPathComponent("model.json").path
            let model = try NeuroShardCostModel.shipped()
            model.hardware = Self.cascadeLake
            try model.write(to: path, heldOutMedianError: nil, unseenTablesMedianError: nil)
            #expect(try NeuroShardCostModel.read(path).hardware == Self.cascadeLake)
            var reference = try SpeedReference.shipped()
            #expect(reference.hardware == nil)
            reference.hardware = Self.cascadeLake
            try reference.write(to: path)
            #expect(try SpeedReference.read(path).hardware == Self.cascadeLake)
        }
    }
}
