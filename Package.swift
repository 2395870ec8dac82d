// swift-tools-version:6.0
import Foundation
import PackageDescription

// MPITRAIN_MPI=mpich builds against MPICH (pkg-config mpich); the default is OpenMPI (ompi-c).
let mpich = ProcessInfo.processInfo.environment["MPITRAIN_MPI"] == "mpich"

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
        .target(name: "Models", dependencies: ["BLASShim", "METISShim", "CPUShim", "ZlibShim"]),
        // The shipped cost models in Sources/Sharding/Resources are found at run time by
        // ShippedResources (beside the binary, an install prefix, MPITRAIN_RESOURCES), not bundled.
        .target(name: "Sharding", dependencies: ["Models"], exclude: ["Resources"]),
        .target(
            name: "Distributed", dependencies: ["MPIShim", "CPUShim", "Models", "Sharding"],
            swiftSettings: mpich ? [.define("MPICH")] : []),
        .executableTarget(
            name: "mpitrain",
            dependencies: [
                "Distributed", "Models", "Sharding",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildInfo"]),
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "TestSupport"]),
        .testTarget(name: "ShardingTests", dependencies: ["Sharding", "Models", "TestSupport"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Models", "Sharding", "TestSupport"]),
    ]
)
