import XCTest
@testable import Bilevel

/// The Hessian-inverse solvers inside `Implicit`, against the P1 closed form and the P3 formula.
final class SolverTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    private func ridgeHypergradient<S: HessianInverseSolver>(_ solver: S) throws -> HypergradientResult {
        try Implicit(solver: solver).hypergradient(of: ridge.problem(steps: 1), at: ridge.x0, innerSolution: ridge.solution(ridge.x0))
    }

    func testExactSolveMatchesClosedForm() throws {
        let result = try ridgeHypergradient(.exact)
        let err = relativeError(result.hypergradient, ridge.exactHypergradient(ridge.x0))
        print("implicit-exact vs P1 closed form: \(err), residual \(result.diagnostics.residual!)")
        XCTAssertLessThan(err, 1e-10)
        XCTAssertLessThan(result.diagnostics.residual!, 1e-12)
        XCTAssertEqual(result.diagnostics.counts.hvps, ridge.d + 1)
    }

    func testExactSolveFallsBackToLUForIndefiniteHessian() throws {
        // f(x, y) = ½ yᵀ diag(1, −2) y − xᵀy: H indefinite, v = H⁻¹ b.
        let problem = BilevelProblem(
            upper: { _, y in (y * Tensor([3, 5])).sum() },
            lower: { x, y in 0.5 * (y * y * Tensor([1, -2])).sum() - dot(x, y) }, innerSteps: 1)
        let result = try Implicit(solver: .exact).hypergradient(of: problem, at: Tensor([0, 0]), innerSolution: Tensor([0, 0]))
        // dF/dx = −∇²ₓᵧf H⁻¹ ∇ᵧF = H⁻¹ (3, 5) = (3, −2.5).
        XCTAssertTrue(result.hypergradient.isApproximatelyEqual(to: Tensor([3, -2.5]), tolerance: 1e-14), "\(result.hypergradient)")
        XCTAssertTrue(result.diagnostics.notes.contains { $0.contains("LU") })
    }

    func testNeumannAndFixedPointConvergeToClosedForm() throws {
        let exact = ridge.exactHypergradient(ridge.x0)
        let neumann = try ridgeHypergradient(.neumannSeries(terms: 200, step: ridge.eta, tolerance: 1e-10))
        let fixedPoint = try ridgeHypergradient(.fixedPoint(iterations: 200, step: ridge.eta, tolerance: 1e-12))
        let errN = relativeError(neumann.hypergradient, exact), errF = relativeError(fixedPoint.hypergradient, exact)
        print("implicit-neumann(200) vs closed form \(errN), residual \(neumann.diagnostics.residual!); fixed point \(errF) after \(fixedPoint.diagnostics.solverIterations!) iterations")
        XCTAssertLessThan(errN, 1e-6)
        XCTAssertLessThan(errF, 1e-6)
        XCTAssertTrue(neumann.diagnostics.converged)
        XCTAssertEqual(neumann.diagnostics.solverIterations, 199)
        XCTAssertEqual(neumann.diagnostics.counts.hvps, 200)
        XCTAssertLessThan(fixedPoint.diagnostics.solverIterations!, 200)
        let short = try ridgeHypergradient(.neumannSeries(terms: 2, step: ridge.eta, tolerance: 1e-10))
        XCTAssertFalse(short.diagnostics.converged)
        XCTAssertGreaterThan(relativeError(short.hypergradient, exact), 1e-3)
        XCTAssertThrowsError(try ridgeHypergradient(.neumannSeries(terms: 2, step: ridge.eta, tolerance: 1e-10, strict: true)))
        XCTAssertThrowsError(try ridgeHypergradient(.neumannSeries(terms: 0, step: ridge.eta)))
        XCTAssertThrowsError(try ridgeHypergradient(.fixedPoint(iterations: 5, step: -1)))
    }

    /// Neumann with K terms equals fixed point with K iterations from 0 (same polynomial in H).
    func testNeumannEqualsFixedPointWithSameCount() throws {
        let neumann = try ridgeHypergradient(.neumannSeries(terms: 7, step: ridge.eta)).hypergradient
        let fixedPoint = try ridgeHypergradient(.fixedPoint(iterations: 7, step: ridge.eta)).hypergradient
        XCTAssertLessThan(relativeError(neumann, fixedPoint), 1e-12)
    }

    /// P3 (reduced n = 200, m = 100, d = 20): exact against the workloads formula; CG-10/50, Neumann(α = 15, K = 50).
    func testHyperCleaningSolvers() throws {
        let p3 = Fixtures.Cleaning(n: 200, m: 100, d: 20), x = p3.x0, w = p3.solution(p3.x0)
        let problem = p3.problem(steps: 1)
        // dF/dx_i = −(1/n) σ'(x_i) ℓ'(z_i) ytr_i (X_i·v), z_i = ytr_i X_i·w*, ℓ'(z) = −sigmoid(−z).
        let h = hessian(at: w) { p3.lower(x, $0) }
        let v = solve(h, gradient(at: w) { p3.upper(x, $0) })
        let s = sigmoid(x), z = p3.ytr * matmul(p3.xtr, w)
        let formula = -(1.0 / Double(p3.n)) * s * (1 - s) * (-sigmoid(-z)) * p3.ytr * matmul(p3.xtr, v)
        let exact = try Implicit(solver: .exact).hypergradient(of: problem, at: x, innerSolution: w).hypergradient
        let cg10 = try Implicit(solver: .conjugateGradient(maxIterations: 10)).hypergradient(of: problem, at: x, innerSolution: w)
        let cg50 = try Implicit(solver: .conjugateGradient(maxIterations: 50)).hypergradient(of: problem, at: x, innerSolution: w)
        let neumann = try Implicit(solver: .neumannSeries(terms: 50, step: 15)).hypergradient(of: problem, at: x, innerSolution: w)
        let errors = [exact, cg10.hypergradient, cg50.hypergradient, neumann.hypergradient].map { relativeError($0, formula) }
        print("P3 (200/100/20) vs formula: exact \(errors[0]), cg-10 \(errors[1]), cg-50 \(errors[2]), neumann-50 \(errors[3]) (residual \(neumann.diagnostics.residual!))")
        XCTAssertLessThan(errors[0], 1e-10)
        XCTAssertLessThan(errors[2], 1e-6)
        XCTAssertLessThan(errors[2], errors[1])
        XCTAssertLessThan(errors[3], 1e-4)
    }
}
