import Foundation
import XCTest
@testable import AutoDiff

/// The reverse tape's first-order fast path (`ElementwiseVJP`, `ElementwiseBinaryVJP`): for every
/// element-wise primitive, the in-place scalar VJP equals the tensor rule that higher orders run, and
/// the tape that uses it never overwrites a tensor the caller still holds.
final class TapeFastPathTests: XCTestCase {
    /// Inputs inside every op's domain (log, sqrt, pow need x > 0).
    let positive = Tensor(shape: [2, 3], scalars: [0.3, 1.7, 0.05, 2.2, 0.9, 3.1])
    /// Inputs of both signs, away from the kinks of relu, abs, sign and step.
    let mixed = Tensor(shape: [2, 3], scalars: [-1.3, 0.4, -0.2, 2.1, 0.75, -2.6])
    /// An output adjoint.
    let adjoint = Tensor(shape: [2, 3], scalars: [0.7, -1.1, 2.0, 0.25, -0.6, 1.4])

    /// Every element-wise one-input primitive with a scalar VJP, with the input it is checked at.
    var unaryCases: [(any ElementwiseVJP, Tensor)] {
        [
            (Exp(), mixed), (Log(), positive), (Sqrt(), positive), (PowConstant(exponent: 2.5), positive),
            (PowConstant(exponent: -1.5), positive), (Tanh(), mixed), (Sigmoid(), mixed), (Softplus(), mixed),
            (Relu(), mixed), (Sin(), mixed), (Cos(), mixed), (Abs(), mixed), (PiecewiseConstant.sign, mixed),
            (PiecewiseConstant.step, mixed), (Negate(), mixed),
        ]
    }

    /// Every element-wise two-input primitive with scalar VJPs (`Add` has none: its rule returns the
    /// adjoint itself and allocates nothing).
    var binaryOps: [any ElementwiseBinaryVJP] { [Subtract(), Multiply(), Divide(), Pow()] }

    /// `vjpInPlace` overwrites the adjoint with `vjp(_:x:y:)` to rounding, for every unary op.
    func testUnaryScalarVJPEqualsTheTensorRule() {
        XCTAssertEqual(unaryCases.count, 15)
        for (op, x) in unaryCases {
            let y = op.value(x)
            let rule = op.vjp(adjoint, x: x, y: y)
            var fast = adjoint
            XCTAssertTrue(op.vjpInPlace(&fast, x: x, y: y), op.name)
            XCTAssertEqual(fast.shape, rule.shape, op.name)
            assertClose(fast, rule, op.name)
        }
    }

    /// `vjpAInPlace` / `vjpBInPlace` equal `vjpA` / `vjpB` for same-shape inputs and for a one-element
    /// other input (broadcast), and decline (returning false, adjoint unchanged) a broadcast input.
    func testBinaryScalarVJPsEqualTheTensorRules() {
        let a = positive, b = Tensor(shape: [2, 3], scalars: [1.2, 0.5, 2.5, 0.8, 1.9, 0.35]), c = Tensor(1.7)
        for op in binaryOps {
            for (left, right) in [(a, b), (a, c), (c, b)] {
                let y = op.value(left, right)
                var fastA = adjoint, fastB = adjoint
                if left.shape == y.shape {
                    XCTAssertTrue(op.vjpAInPlace(&fastA, a: left, b: right, y: y), op.name)
                    assertClose(fastA, op.vjpA(adjoint, a: left, b: right, y: y), "\(op.name) A")
                } else {
                    XCTAssertFalse(op.vjpAInPlace(&fastA, a: left, b: right, y: y), op.name)
                    XCTAssertEqual(fastA.scalars, adjoint.scalars, op.name)
                }
                if right.shape == y.shape {
                    XCTAssertTrue(op.vjpBInPlace(&fastB, a: left, b: right, y: y), op.name)
                    assertClose(fastB, op.vjpB(adjoint, a: left, b: right, y: y), "\(op.name) B")
                } else {
                    XCTAssertFalse(op.vjpBInPlace(&fastB, a: left, b: right, y: y), op.name)
                    XCTAssertEqual(fastB.scalars, adjoint.scalars, op.name)
                }
            }
        }
    }

    /// A primitive that declares no fast path keeps the default (`false`, adjoint unchanged).
    func testOpsWithoutScalarVJPDecline() {
        var g = adjoint
        XCTAssertFalse(Add().vjpAInPlace(&g, a: positive, b: positive, y: positive + positive))
        XCTAssertFalse(Broadcast(shape: [2, 3]).vjpInPlace(&g, x: positive, y: positive))
        XCTAssertEqual(g.scalars, adjoint.scalars)
    }

    /// The scalar chain of the benchmark: its gradient through the fast path equals the closed form
    /// `∏ cos(yₖ·c)·c`.
    func testScalarChainGradientMatchesTheClosedForm() {
        let c = 1.0000001, steps = 500
        var y = 0.3, derivative = 1.0
        for _ in 0..<steps {
            derivative *= Foundation.cos(y * c) * c
            y = Foundation.sin(y * c)
        }
        let g = gradient(at: Tensor(0.3)) { x in
            var y = x
            for _ in 0..<steps { y = sin(y * c) }
            return y
        }
        XCTAssertEqual(g.scalar, derivative, accuracy: 1e-14 * Swift.abs(derivative))
    }

    /// The in-place paths never write into a tensor the caller holds: a pullback called twice with
    /// the same cotangent gives the same adjoints, and the cotangent and the inputs are unchanged.
    func testPullbackLeavesItsArgumentsIntact() {
        let x = mixed, v = adjoint
        let (_, pullback) = vjp(at: x) { x in tanh(sin(x) * 2) / (x * x + 1) }
        let first = pullback(v), second = pullback(v)
        XCTAssertEqual(first.scalars, second.scalars)
        XCTAssertEqual(v.scalars, adjoint.scalars)
        XCTAssertEqual(x.scalars, mixed.scalars)
        // Against the closed form: d/dx [tanh(2 sin x) / (x² + 1)].
        for i in 0..<x.count {
            let t = x.scalars[i], u = Foundation.tanh(2 * Foundation.sin(t)), d = t * t + 1
            let expected = ((1 - u * u) * 2 * Foundation.cos(t) * d - u * 2 * t) / (d * d) * v.scalars[i]
            XCTAssertEqual(first.scalars[i], expected, accuracy: 1e-13)
        }
    }

    /// One value feeding both inputs of a node (`x * x`) and two nodes (`x - x`): the in-place path for
    /// one input must not corrupt the adjoint the other still needs.
    func testSharedInputsAccumulateBothContributions() {
        let x = mixed
        let g = gradient(at: x) { x in (x * x - sin(x) * x).sum() }
        for i in 0..<x.count {
            let t = x.scalars[i]
            XCTAssertEqual(g.scalars[i], 2 * t - Foundation.cos(t) * t - Foundation.sin(t), accuracy: 1e-14)
        }
    }

    /// Above first order the tensor rules run (the adjoint is tracked by the outer level): the second
    /// derivative of the scalar chain's first step, sin(c·x), is −c² sin(c·x).
    func testSecondOrderUsesTheTensorRules() {
        let c = 1.5, x = Tensor(0.4)
        let second = gradient(at: x) { x in gradient(at: x) { x in sin(x * c) } }
        XCTAssertEqual(second.scalar, -c * c * Foundation.sin(c * 0.4), accuracy: 1e-14)
    }

    private func assertClose(_ actual: Tensor, _ expected: Tensor, _ message: String, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, message, line: line)
        for (a, e) in zip(actual.scalars, expected.scalars) {
            XCTAssertEqual(a, e, accuracy: 1e-15 * Swift.max(1, Swift.abs(e)), message, line: line)
        }
    }
}
