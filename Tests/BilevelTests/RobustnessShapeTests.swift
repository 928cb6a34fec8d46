import XCTest
@testable import Bilevel

/// Bad shapes reach `validate` as thrown `shapeMismatch` errors naming the quantity and both shapes,
/// for every method, before any engine op could trap or broadcast.
final class RobustnessShapeTests: XCTestCase {
    func testABroadcastingY0IsRejectedByEveryMethod() {
        // [1] broadcasts against x = [3] inside f: without the declared lowerShape this ran and returned
        // a plausible hypergradient.
        let problem = Robustness.quadratic()
        for method in Robustness.unconstrainedMethods() {
            guard let error = bilevelError({ try method.hypergradient(of: problem, at: Robustness.x, from: Tensor([0])) }) else { continue }
            guard case let .shapeMismatch(name, expected, actual) = error else { XCTFail("\(method.name): \(error)"); continue }
            XCTAssertEqual(expected, [3], method.name)
            XCTAssertEqual(actual, [1], method.name)
            assertMentions("\(error)", ["y0", "lowerShape", "[1]", "[3]"])
            XCTAssertTrue(name.contains("y0"))
        }
    }

    func testAWrongRankY0IsRejected() {
        let error = bilevelError { try ReverseUnroll().hypergradient(of: Robustness.quadratic(), at: Robustness.x, from: Tensor(zeros: [3, 1])) }
        guard case let .shapeMismatch(_, expected, actual)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(expected, [3])
        XCTAssertEqual(actual, [3, 1])
    }

    func testNonScalarObjectivesAreRejected() {
        let vectorUpper = BilevelProblem(upper: { _, y in y * y }, lower: { x, y in (y - x).squaredNorm() })
        let vectorLower = BilevelProblem(upper: { _, y in y.squaredNorm() }, lower: { x, y in (y - x) * (y - x) })
        for (problem, name) in [(vectorUpper, "upper(x, y0)"), (vectorLower, "lower(x, y0)")] {
            for method in Robustness.unconstrainedMethods() {
                let error = bilevelError { try method.hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }
                guard case let .shapeMismatch(quantity, expected, actual)? = error else { XCTFail("\(method.name): \(String(describing: error))"); continue }
                XCTAssertTrue(quantity.contains(name), "\(method.name): \(quantity)")
                XCTAssertEqual(expected, [])
                XCTAssertEqual(actual, [3])
            }
        }
    }

    func testEmptyInputsAreRejected() {
        let error = bilevelError { try ReverseUnroll().hypergradient(of: Robustness.quadratic(lowerShape: nil), at: Tensor(zeros: [0]), from: Robustness.y0) }
        guard case let .emptyTensor(name)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(name, "x")
    }

}
