import XCTest
@testable import Bilevel

/// Divergent iterations are never reported as converged, and their non-finite results never reach the
/// caller as a hypergradient.
final class RobustnessDivergenceTests: XCTestCase {
    /// Curvature 4 with step 3: the Neumann factor `1 − 3·4 = −11` makes the series diverge.
    let problem = Robustness.quadratic(curvature: 4)

    func system() -> LinearSystem { LinearSystem(oracle: BilevelOracle(problem), x: Robustness.x, y: Robustness.x) }

    func testADivergentNeumannSeriesIsNotConverged() throws {
        let short = try NeumannSeries(terms: 20, step: 3).solve(system(), rhs: Tensor([1, 1, 1]))
        XCTAssertFalse(short.residual! <= 1, "the residual of a divergent series exceeds that of v = 0")
        XCTAssertTrue(short.notes.contains { $0.contains("diverges") }, "\(short.notes)")
        let long = try NeumannSeries(terms: 400, step: 3).solve(system(), rhs: Tensor([1, 1, 1]))
        XCTAssertFalse(long.residual!.isFinite)
        XCTAssertFalse(long.converged, "a solve is never converged with a non-finite residual")
    }

    func testADivergentNeumannSeriesThrowsInsteadOfNaN() {
        let error = bilevelError { try Implicit(solver: .neumannSeries(terms: 400, step: 3)).hypergradient(of: self.problem, at: Robustness.x, from: Robustness.y0) }
        guard case let .nonFinite(quantity, nil)? = error else { return XCTFail("\(String(describing: error))") }
        assertMentions(quantity, ["neumann", "399 iterations", "diverged"])
    }

    func testADivergentFixedPointIterationIsNotConverged() throws {
        let solution = try FixedPointSolver(iterations: 400, step: 3).solve(system(), rhs: Tensor([1, 1, 1]))
        XCTAssertFalse(solution.converged)
    }

    func testANonFiniteResidualIsNeverConverged() {
        let solution = LinearSolution(solution: Tensor([0]), iterations: 3, residual: .nan, converged: true)
        XCTAssertFalse(solution.converged)
    }

    func testADivergentInnerLoopNamesTheStep() {
        let divergent = Robustness.quadratic(curvature: 4, dynamics: .gradientDescent(step: 1), innerSteps: 2000)
        let error = bilevelError { try ReverseUnroll().hypergradient(of: divergent, at: Robustness.x, from: Robustness.y0) }
        guard case let .nonFinite(quantity, step?)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(quantity, "the inner iterate")
        XCTAssertGreaterThan(step, 1)
    }
}
