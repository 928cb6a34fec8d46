import Foundation
import XCTest
@testable import AutoDiff

/// `gradcheck` itself: it must catch wrong rules, locate them and never hide a NaN.
final class GradcheckTests: XCTestCase {
    /// `exp` with a VJP rule off by a factor 1.5 and a correct JVP, defined as a user would.
    struct WrongReverseExp: UnaryPrimitive {
        var name: String { "wrongReverseExp" }
        func value(_ x: Tensor) -> Tensor { exp(x) }
        func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * y }
        func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { 1.5 * g * y }
        func swiftSource(_ x: String) -> String { "wrongReverseExp(\(x))" }
    }

    /// `sin` with a JVP rule of the wrong sign and a correct VJP.
    struct WrongForwardSin: UnaryPrimitive {
        var name: String { "wrongForwardSin" }
        func value(_ x: Tensor) -> Tensor { sin(x) }
        func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { -(t * cos(x)) }
        func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * cos(x) }
        func swiftSource(_ x: String) -> String { "wrongForwardSin(\(x))" }
    }

    func wrongReverseExp(_ x: Tensor) -> Tensor { WrongReverseExp()(x) }
    func wrongForwardSin(_ x: Tensor) -> Tensor { WrongForwardSin()(x) }

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
