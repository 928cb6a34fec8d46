import XCTest
@testable import Bilevel

/// A solver stopped by its cap reports its residual and iterations; in strict mode it throws
/// `didNotConverge` carrying the solver's real tolerance.
final class RobustnessSolverCapTests: XCTestCase {
    /// A lower level with Hessian `A` (3×3, distinct eigenvalues), so one CG step cannot solve it.
    static let matrix = Tensor(shape: [3, 3], scalars: [4, 1, 0, 1, 3, 1, 0, 1, 2])
    let problem = BilevelProblem(
        upper: { _, y in y.squaredNorm() }, lower: { x, y in 0.5 * dot(y, matmul(RobustnessSolverCapTests.matrix, y)) - dot(x, y) },
        innerSteps: 20)

    func testStrictCGCarriesItsTolerance() {
        let strict = bilevelError {
            try Implicit(solver: .conjugateGradient(maxIterations: 1, tolerance: 1e-10), strict: true).hypergradient(
                of: self.problem, at: Robustness.x, from: Robustness.y0)
        }
        guard case let .didNotConverge(solver, iterations, residual, tolerance)? = strict else { return XCTFail("\(String(describing: strict))") }
        XCTAssertEqual(solver, "cg")
        XCTAssertEqual(iterations, 1)
        XCTAssertGreaterThan(residual, 1e-10)
        XCTAssertEqual(tolerance, 1e-10, "strict mode reported tolerance \(tolerance)")
        assertMentions("\(strict!)", ["cg did not converge", "after 1 iterations", "tolerance 1e-10"])
    }

    func testStrictMethodCarriesTheNeumannTolerance() {
        let error = bilevelError {
            try Implicit(solver: .neumannSeries(terms: 2, step: 0.2, tolerance: 1e-8), strict: true).hypergradient(
                of: self.problem, at: Robustness.x, from: Robustness.y0)
        }
        guard case let .didNotConverge(_, iterations, _, tolerance)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(iterations, 1)
        XCTAssertEqual(tolerance, 1e-8)
    }

    func testAnUnconvergedSolveIsReportedWithResidualAndIterations() throws {
        let result = try Implicit(solver: .conjugateGradient(maxIterations: 1)).hypergradient(of: problem, at: Robustness.x, from: Robustness.y0)
        XCTAssertFalse(result.diagnostics.converged)
        XCTAssertEqual(result.diagnostics.solverIterations, 1)
        XCTAssertGreaterThan(result.diagnostics.residual!, 1e-10)
    }
}
