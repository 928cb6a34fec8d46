import XCTest
@testable import Bilevel

/// No method returns a non-finite hypergradient: the one shared check (`timed`, `solveRecording`) throws
/// `nonFinite` naming the quantity.
final class RobustnessNonFiniteTests: XCTestCase {
    /// `f = Σ (1 − cos(y − x))`: the gradient `sin(y − x)` is bounded, so with step 10 the iterates stay
    /// finite, but the step `u ↦ u − 10 sin u` is chaotic (its Jacobian `1 − 10 cos u` averages well above
    /// 1 in size), so the derivative of y_T grows exponentially and overflows within T = 600 steps.
    static var overflowingDerivative: BilevelProblem {
        BilevelProblem(
            upper: { _, y in 0.5 * y.squaredNorm() },
            lower: { x, y in (1 - cos(y - x)).sum() },
            dynamics: .gradientDescent(step: 10), innerSteps: 600, lowerShape: [3])
    }

    func testAnOverflowingInnerDerivativeThrowsInsteadOfNaN() throws {
        let x = Tensor([0.3, -0.2, 0.1]), y0 = Tensor([0, 0.05, 0])
        // The inner loop itself is finite.
        XCTAssertFalse(try unrolledObjective(Self.overflowingDerivative, x, from: y0).isNaN)
        for method: any HypergradientMethod in [ReverseUnroll(), ForwardUnroll()] {
            let error = bilevelError { try method.hypergradient(of: Self.overflowingDerivative, at: x, from: y0) }
            guard case let .nonFinite(quantity, _)? = error else { XCTFail("\(method.name): \(String(describing: error))"); continue }
            assertMentions(quantity, ["the hypergradient", "600 inner steps"])
        }
    }

    func testANaNUpperGradientThrowsForUnrolledAndImplicitMethods() {
        let problem = Robustness.quadratic(upperExtra: { Double.nan * $0.sum() })
        // FirstOrderUnroll's estimate ∇ₓF(x, y_T) never reads ∇ᵧF, so it is finite and correct here.
        for method in Robustness.unconstrainedMethods() where !(method is FirstOrderUnroll) {
            let error = bilevelError { try method.hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }
            guard case .nonFinite? = error else { XCTFail("\(method.name): \(String(describing: error))"); continue }
        }
        // Implicit CG used to return ∇ₓF with v = 0, "converged" (its ‖b‖ > 0 test is false for NaN).
        let error = bilevelError { try Implicit(solver: .conjugateGradient()).hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }
        assertMentions("\(error!)", ["right-hand side", "cg solve", "NaN or infinity"])
    }

    func testCGRejectsANaNRightHandSide() {
        let oracle = BilevelOracle(Robustness.quadratic())
        let system = LinearSystem(oracle: oracle, x: Robustness.x, y: Robustness.x)
        let error = bilevelError { try ConjugateGradient().solve(system, rhs: Tensor([1, .nan, 0])) }
        guard case let .nonFinite(quantity, nil)? = error else { return XCTFail("\(String(describing: error))") }
        assertMentions(quantity, ["right-hand side", "cg"])
    }

    func testNonFiniteInputsAreNamed() {
        let error = bilevelError { try ReverseUnroll().hypergradient(of: Robustness.quadratic(), at: Tensor([1, .infinity, 3]), from: Robustness.y0) }
        guard case let .nonFinite(quantity, nil)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(quantity, "x")
    }
}
