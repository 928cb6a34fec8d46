import Foundation
import XCTest
import AutoDiff

/// Emitted Swift source: the checked-in functions in `Generated/` are exactly what the emitter prints
/// now for the optimized gradient and forward-over-reverse HVP of a small Rosenbrock function, and they
/// compute the engine's numbers. Set `REGENERATE_STAGED_SOURCES=1` to rewrite them after an intended
/// change of the emitter or of a rule.
final class StagedSourceTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Generated")

    /// `Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²` over four elements.
    static func rosenbrock(_ x: Tensor) -> Tensor {
        let head = x[0..<3], tail = x[1..<4]
        let gap = tail - head * head, miss = 1 - head
        return (100 * gap * gap + miss * miss).sum()
    }

    static var emitted: [(file: String, source: String)] {
        let program = stage(shape: [4], rosenbrock)
        return [
            ("RosenbrockGradient.swift", program.gradient().optimized().swiftSource(functionName: "generatedRosenbrockGradient")),
            ("RosenbrockHVP.swift", program.hvp(mode: .forwardOverReverse).optimized().swiftSource(functionName: "generatedRosenbrockHVP")),
        ]
    }

    func testCheckedInSourcesMatchTheEmitter() throws {
        for (file, source) in Self.emitted {
            let url = Self.directory.appendingPathComponent(file)
            if ProcessInfo.processInfo.environment["REGENERATE_STAGED_SOURCES"] == "1" {
                try source.write(to: url, atomically: true, encoding: .utf8)
            }
            let checkedIn = try String(contentsOf: url, encoding: .utf8)
            XCTAssertEqual(checkedIn, source, "\(file) differs from the emitter's output; regenerate it (REGENERATE_STAGED_SOURCES=1) and review the diff")
        }
    }

    func testGeneratedFunctionsComputeTheEngineNumbers() {
        let x = Tensor([0.5, -0.3, 1.2, 0.8]), v = Tensor([1, -0.5, 0.25, 2])
        XCTAssertTrue(generatedRosenbrockGradient(x).isApproximatelyEqual(to: gradient(at: x, of: Self.rosenbrock), tolerance: 1e-13))
        XCTAssertTrue(generatedRosenbrockHVP(x, v).isApproximatelyEqual(to: hvp(at: x, direction: v, of: Self.rosenbrock), tolerance: 1e-13))
    }
}
