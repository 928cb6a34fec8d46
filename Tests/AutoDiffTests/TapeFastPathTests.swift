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

    /// Every element-wise one-input primitive with an in-place VJP (`Softplus` writes its own; the
    /// others conform to `ElementwiseVJP`), with the input it is checked at.
    var unaryCases: [(any UnaryPrimitive, Tensor)] {
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
            // What the tape hands the rules when it did not keep y: x in its place.
            guard !op.vjpReadsOutput else { continue }
            var standIn = adjoint
            XCTAssertTrue(op.vjpInPlace(&standIn, x: x, y: x), op.name)
            assertClose(standIn, rule, "\(op.name) without y")
            assertClose(op.vjp(adjoint, x: x, y: x), rule, "\(op.name) rule without y")
        }
    }

    /// The ops whose rules do not read y say so (the tape then keeps no y), the others do not.
    func testOpsDeclareWhetherTheirRulesReadTheOutput() {
        let withoutOutput = unaryCases.filter { !$0.0.vjpReadsOutput }.map { $0.0.name }
        XCTAssertEqual(withoutOutput, ["log", "pow", "pow", "softplus", "relu", "sin", "cos", "abs", "sign", "step", "negate"])
        XCTAssertEqual(binaryOps.filter { !$0.vjpReadsOutput }.map(\.name), ["subtract", "multiply"])
        XCTAssertFalse(Add().vjpReadsOutput)
        XCTAssertTrue(Broadcast(shape: [2, 3]).vjpReadsOutput)
    }

    /// `vjpAInPlace` / `vjpBInPlace` equal `vjpA` / `vjpB` for same-shape inputs and for a one-element
    /// other input (broadcast), and decline (returning false, adjoint unchanged) a broadcast input.
    func testBinaryScalarVJPsEqualTheTensorRules() {
        let a = positive, b = Tensor(shape: [2, 3], scalars: [1.2, 0.5, 2.5, 0.8, 1.9, 0.35]), c = Tensor(1.7)
        for op in binaryOps {
            for (left, right) in [(a, b), (a, c), (c, b)] { checkBinary(op, left, right) }
        }
    }

    /// One op at one pair of inputs: each side's in-place path against its rule, with the stand-in
    /// for y the tape hands the rules when it did not keep y (`a`).
    private func checkBinary<Op: ElementwiseBinaryVJP>(_ op: Op, _ left: Tensor, _ right: Tensor) {
        let y = op.value(left, right)
        let output = !op.vjpReadsOutput && left.shape == y.shape ? left : y
        let sides: [(String, Tensor, (inout Tensor, Tensor) -> Bool, (Tensor, Tensor) -> Tensor)] = [
            ("A", left, { op.vjpAInPlace(&$0, a: left, b: right, y: $1) }, { op.vjpA($0, a: left, b: right, y: $1) }),
            ("B", right, { op.vjpBInPlace(&$0, a: left, b: right, y: $1) }, { op.vjpB($0, a: left, b: right, y: $1) }),
        ]
        for (side, input, inPlace, rule) in sides {
            var fast = adjoint
            let message = "\(op.name) \(side) at \(left.shape), \(right.shape)"
            if input.shape == y.shape {
                XCTAssertTrue(inPlace(&fast, output), message)
                assertClose(fast, rule(adjoint, y), message)
                assertClose(rule(adjoint, output), rule(adjoint, y), message)
            } else {
                XCTAssertFalse(inPlace(&fast, output), message)
                XCTAssertEqual(fast.scalars, adjoint.scalars, message)
            }
        }
    }

    /// Empty tensors go through the tape like any other (the fast paths have nothing to write).
    func testEmptyTensorsHaveEmptyGradients() {
        let empty = Tensor(shape: [0], scalars: [])
        for (op, _) in unaryCases {
            XCTAssertEqual(gradient(at: empty) { op.callAsFunction($0).sum() }.shape, [0], op.name)
        }
        XCTAssertEqual(gradient(at: empty) { ($0 * $0 - $0 / 2).sum() }.shape, [0])
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

    /// Adjoints above `Level.inPlaceLimit` elements take the tensor rules, those within it the
    /// in-place paths; both give the closed form, including when `a + b` shares one adjoint.
    func testLargeAndSmallAdjointsAgree() {
        for count in [Level.inPlaceLimit, Level.inPlaceLimit + 1] {
            let x = Tensor(shape: [count]) { 0.001 * Double($0) - 1.5 }
            let g = gradient(at: x) { x in (sin(x) * x + (x - 0.5) * 3).sum() }
            for i in stride(from: 0, to: count, by: 97) {
                let t = x.scalars[i]
                XCTAssertEqual(g.scalars[i], Foundation.cos(t) * t + Foundation.sin(t) + 3, accuracy: 1e-14, "\(count)")
            }
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
