import XCTest
@testable import AutoDiff
import Foundation

final class NestingTests: XCTestCase {
    /// d/dx [x · d/dy (x + y)] = d/dx [x · 1] = 1; perturbation confusion would give 2.
    func testNestedGradientsDoNotConfusePerturbations() {
        for x0 in [1.0, -2.5, 7.0] {
            let d = gradient(at: Tensor(x0)) { x in (x * gradient(at: Tensor(1.0)) { y in x + y }).sum() }
            XCTAssertEqual(d.scalar, 1, accuracy: 0, "at x = \(x0)")
        }
    }

    /// The same with forward mode inside reverse mode and reverse inside forward.
    func testMixedModeNestingDoesNotConfusePerturbations() {
        let x = Tensor(1.0)
        let reverseOverForward = gradient(at: x) { x in
            (x * jvp(at: Tensor(1.0), direction: Tensor(1.0)) { y in x + y }.tangent).sum()
        }
        XCTAssertEqual(reverseOverForward.scalar, 1)
        let forwardOverReverse = jvp(at: x, direction: Tensor(1.0)) { x in x * gradient(at: Tensor(1.0)) { y in (x + y).sum() } }
        XCTAssertEqual(forwardOverReverse.tangent.scalar, 1)
    }

    /// A closed-over outer variable inside an inner gradient: d/dx ∇_y (x·y²)|_{y=3} = d/dx (6x) = 6.
    func testInnerGradientDependsOnOuterVariable() {
        let d = gradient(at: Tensor(2.0)) { x in gradient(at: Tensor(3.0)) { y in x * y * y }.sum() }
        XCTAssertEqual(d.scalar, 6, accuracy: 1e-14)
    }

    /// f(x) = x⁴: f''' = 24 x; three nested reverse levels.
    func testThirdDerivativeOfScalarFunction() {
        let x0 = 1.7
        let f3 = gradient(at: Tensor(x0)) { x in
            gradient(at: x) { x in gradient(at: x) { x in pow(x, 4) } }
        }
        XCTAssertEqual(f3.scalar, 24 * x0, accuracy: 1e-12)
        let mixed = jvp(at: Tensor(x0), direction: Tensor(1.0)) { x in
            gradient(at: x) { x in gradient(at: x) { x in exp(sin(x)) } }
        }.tangent.scalar
        // (e^{sin x})''' = e^{sin x}(cos³x − 3 sin x cos x − cos x)
        let s = Foundation.sin(x0), c = Foundation.cos(x0)
        XCTAssertEqual(mixed, Foundation.exp(s) * (c * c * c - 3 * s * c - c), accuracy: 1e-12)
    }
}
