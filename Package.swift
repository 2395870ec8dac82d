// swift-tools-version:6.0
import Foundation
import PackageDescription

// MPITRAIN_MPI=mpich builds against MPICH (pkg-config mpich); the default is OpenMPI (ompi-c).
let mpich = ProcessInfo.processInfo.environment["MPITRAIN_MPI"] == "mpich"

// The CPU the kernels are compiled for. Swift's default on x86-64 is the 2003 baseline (SSE2),
// which runs the embedding, sparse and dropout loops 4 floats at a time where AVX2 does 8;
// `haswell` (AVX2, FMA, BMI2: Intel Core and Xeon since 2013, every AMD Zen) where the building
// machine has those, else the baseline. MPITRAIN_TARGET_CPU overrides it: `native` for every extension of this CPU,
// `x86-64` for any x86-64, or another clang CPU name. A binary started on a CPU without what it
// was built for says so and stops (`mpitrain_require_cpu_of_build`).
let targetCPU: String? = {
    if let chosen = ProcessInfo.processInfo.environment["MPITRAIN_TARGET_CPU"], !chosen.isEmpty { return chosen }
    #if arch(x86_64) && os(Linux)
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
    return flags.isSuperset(of: ["avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"]) ? "haswell" : nil
    #else
    return nil
    #endif
}()
let cpuSettings: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0, "-Xcc", "-march=\($0)"])] } ?? []

let package = Package(
    name: "MPITrain",
    products: [
        .executable(name: "mpitrain", targets: ["mpitrain"]),
        .library(name: "Distributed", targets: ["Distributed"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Sharding", targets: ["Sharding"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
    ],
    targets: [
        .systemLibrary(
            name: "MPIShim", path: "Sources/MPIShim", pkgConfig: mpich ? "mpich" : "ompi-c",
            providers: [.apt([mpich ? "libmpich-dev" : "libopenmpi-dev"])]),
        .systemLibrary(
            name: "BLASShim", path: "Sources/BLASShim", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "METISShim", path: "Sources/METISShim",
            providers: [.apt(["libmetis-dev"])]),
        .systemLibrary(
            name: "ZlibShim", path: "Sources/ZlibShim", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPUShim", path: "Sources/CPUShim"),
        .target(name: "Models", dependencies: ["BLASShim", "METISShim", "CPUShim", "ZlibShim"], swiftSettings: cpuSettings),
        // The shipped cost models in Sources/Sharding/Resources are found at run time by
        // ShippedResources (beside the binary, an install prefix, MPITRAIN_RESOURCES), not bundled.
        .target(name: "Sharding", dependencies: ["Models"], exclude: ["Resources"], swiftSettings: cpuSettings),
        .target(
            name: "Distributed", dependencies: ["MPIShim", "CPUShim", "Models", "Sharding"],
            swiftSettings: cpuSettings + (mpich ? [.define("MPICH")] : [])),
        .executableTarget(
            name: "mpitrain",
            dependencies: [
                "Distributed", "Models", "Sharding", "CPUShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpuSettings,
            plugins: ["BuildInfo"]),
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "TestSupport"]),
        .testTarget(name: "ShardingTests", dependencies: ["Sharding", "Models", "TestSupport"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Models", "Sharding", "TestSupport"]),
    ]
)
