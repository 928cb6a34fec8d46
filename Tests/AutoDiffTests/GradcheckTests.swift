import Foundation
import XCTest
@testable import AutoDiff

/// `gradcheck` itself: it must catch wrong rules, locate them and never hide a NaN.
final class GradcheckTests: XCTestCase {
    /// `exp` with a VJP rule off by a factor 1.5 and a correct JVP.
    func wrongReverseExp(_ x: Tensor) -> Tensor {
        Primitive.unary(
            x, value: { Elementwise.map($0) { Foundation.exp($0) } },
            jvp: { t, _, y in t * y }, vjp: { g, _, y in 1.5 * g * y })
    }

    /// `sin` with a JVP rule of the wrong sign and a correct VJP.
    func wrongForwardSin(_ x: Tensor) -> Tensor {
        Primitive.unary(
            x, value: { Elementwise.map($0) { Foundation.sin($0) } },
            jvp: { t, x, _ in -(t * cos(x)) }, vjp: { g, x, _ in g * cos(x) })
    }

    func testCatchesAndLocatesAWrongVJP() {
        // Errors 0.5·eˣ / max(1, eˣ): 0.068, 0.18 and 0.5, so the worst is the last input.
        let x = Tensor([-2, -1, 0.5])
        let report = gradcheck(at: x, of: wrongReverseExp)
        XCTAssertFalse(report.passes())
        XCTAssertEqual(report.worst?.mode, .reverse)
        XCTAssertEqual(report.worst?.input, 2)
        XCTAssertEqual(report.worst?.output, 2)
        XCTAssertEqual(report.maxRelativeError, 0.5, accuracy: 1e-6)
    }

    func testCatchesAWrongJVP() {
        let report = gradcheck(at: Tensor([0.3, -0.4]), of: wrongForwardSin)
        XCTAssertFalse(report.passes())
        XCTAssertEqual(report.worst?.mode, .forward)
        XCTAssertEqual(report.maxRelativeError, 2 * Foundation.cos(0.3), accuracy: 1e-6)
    }

    func testReportsNonFiniteValues() {
        let negativeLog = gradcheck(at: Tensor([1.0, -1.0])) { log($0) }
        XCTAssertFalse(negativeLog.isFinite)
        XCTAssertFalse(negativeLog.passes())
        XCTAssertTrue(negativeLog.maxRelativeError.isNaN)
        XCTAssertTrue(negativeLog.nonFinite.contains { $0.input == 1 })
        XCTAssertTrue("\(negativeLog)".contains("non-finite"))
        let sqrtAtZero = gradcheck(at: Tensor([0.0, 4.0])) { sqrt($0) }
        XCTAssertFalse(sqrtAtZero.passes())
        XCTAssertTrue(sqrtAtZero.nonFinite.contains { $0.input == 0 })
    }

    func testPassesOnCorrectRulesWithSmallError() {
        let report = gradcheck(at: Tensor([0.3, -0.7, 1.2])) { x in softplus(x) * sin(x) }
        XCTAssertTrue(report.passes(tolerance: 1e-6), "\(report)")
        XCTAssertLessThan(report.maxRelativeError, 1e-8)
        XCTAssertEqual(report.steps.count, 3)
    }
}
