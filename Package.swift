// swift-tools-version:6.0
// Hypergradient: a tape-based reverse/forward-mode AD engine (`AutoDiff`) with a bilevel-optimisation
// layer (`Bilevel`) on top. No package dependencies: only the Swift toolchain.
import PackageDescription

let package = Package(
    name: "Hypergradient",
    products: [
        .library(name: "AutoDiff", targets: ["AutoDiff"]),
        .library(name: "Bilevel", targets: ["Bilevel"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "maml", targets: ["maml"]),
        .executable(name: "fewshot", targets: ["fewshot"]),
    ],
    targets: [
        .target(name: "CKernels"),
        .target(name: "AutoDiff", dependencies: ["CKernels"]),
        .target(name: "Bilevel", dependencies: ["AutoDiff"]),
        .target(name: "Workloads", dependencies: ["AutoDiff", "Bilevel"]),
        .target(name: "CommandLineOptions"),
        .target(name: "MetaLearningSupport", dependencies: ["AutoDiff", "Bilevel", "CommandLineOptions"]),
        .executableTarget(
            name: "bench", dependencies: ["AutoDiff", "Bilevel", "Workloads", "CommandLineOptions"], path: "Benchmarks"),
        .executableTarget(name: "maml", dependencies: ["AutoDiff", "Bilevel", "CommandLineOptions", "MetaLearningSupport"], path: "Examples/MAML"),
        .executableTarget(name: "release-checks", dependencies: ["Bilevel"], path: "Tests/ReleaseChecks"),
        .executableTarget(name: "fewshot", dependencies: ["AutoDiff", "Bilevel", "CommandLineOptions", "MetaLearningSupport"], path: "Examples/FewShot"),
        // Test support: counts heap allocations (Linux/glibc) for the executor's zero-allocation tests.
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(name: "AutoDiffTests", dependencies: ["AutoDiff", "Workloads", "AllocationCounter"]),
        .testTarget(name: "BilevelTests", dependencies: ["AutoDiff", "Bilevel", "Workloads", "CommandLineOptions"]),
        .testTarget(name: "PublicAPITests", dependencies: ["AutoDiff", "Bilevel"]),
    ],
    swiftLanguageModes: [.v6]
)
