import Foundation
import XCTest
@testable import Bilevel

/// KKT implicit differentiation and SIGD on linearly constrained lower levels, against closed forms and
/// central finite differences.
final class ConstrainedTests: XCTestCase {
    /// `f(x, y) = ½ yᵀQy − (Bx)ᵀy` with Q positive definite (eigenvalues in [1.05, 2.85]), n = 6, x ∈ R³.
    struct Quadratic {
        let n = 6, m = 3
        let q: Tensor, b: Tensor
        let target: Tensor
        let x0 = Tensor([0.5, -0.3, 0.8])

        init() {
            let (n, m) = (n, m)
            q = Tensor(shape: [n, n]) { k in (k / n == k % n ? 2 : 0) + 0.3 * cos(Double(k / n + k % n + 1)) }
            b = Tensor(shape: [n, m]) { k in 2 * sin(1.3 * Double(k / m + 1) + 0.7 * Double(k % m + 1)) }
            target = Tensor((0..<n).map { 0.3 * cos(Double($0)) })
        }

        func lower(_ x: Tensor, _ y: Tensor) -> Tensor { 0.5 * dot(y, matmul(q, y)) - dot(matmul(b, x), y) }
        func upper(_ x: Tensor, _ y: Tensor) -> Tensor { 0.5 * (y - target).squaredNorm() + 0.05 * x.squaredNorm() }

        func problem(_ constraints: LinearConstraints) -> BilevelProblem {
            BilevelProblem(upper: upper, lower: lower, constraints: constraints)
        }
    }

    let quadratic = Quadratic()

    /// `F(x, y*(x))` with y* from the active-set lower solver.
    func hyperobjective(_ problem: BilevelProblem, _ x: Tensor) throws -> Double {
        let y = try ActiveSetLowerSolver().solve(problem, at: x, from: Tensor(zeros: [quadratic.n])).y
        return problem.upper(x, y).scalar
    }

    /// Box `0 ≤ y ≤ 0.4`: the KKT hypergradient equals the closed form on the free set,
    /// `∇F = 0.1 x + B_Fᵀ Q_FF⁻¹ (y − t)_F`, and the solver's y* equals `Q_FF⁻¹ ((Bx)_F − Q_FU · 0.4)`.
    func testBoxConstrainedQuadraticMatchesClosedForm() throws {
        let n = quadratic.n, x = quadratic.x0
        let problem = quadratic.problem(.box(lower: 0, upper: 0.4, count: n))
        for solver in [AnyHessianInverseSolver(.exact), AnyHessianInverseSolver(.conjugateGradient(tolerance: 1e-14))] {
            let result = try KKTImplicit(solver: solver, strict: true).hypergradient(of: problem, at: x, from: Tensor(zeros: [n]))
            let y = result.innerSolution.scalars
            let upperActive = (0..<n).filter { abs(y[$0] - 0.4) < 1e-12 }, lowerActive = (0..<n).filter { abs(y[$0]) < 1e-12 }
            let free = (0..<n).filter { !upperActive.contains($0) && !lowerActive.contains($0) }
            XCTAssertFalse(upperActive.isEmpty || lowerActive.isEmpty || free.isEmpty, "the test needs all three kinds of coordinates: y* = \(y)")
            XCTAssertFalse(result.diagnostics.notes.contains { $0.contains("zero multiplier") }, "strict complementarity expected")

            let qFF = submatrix(quadratic.q, free, free), bF = submatrix(quadratic.b, free, Array(0..<quadratic.m))
            let rhs = Tensor(free.map { i in matmul(quadratic.b, x).scalars[i] - upperActive.reduce(0) { $0 + quadratic.q.scalars[i * n + $1] * 0.4 } })
            let yFree = AutoDiff.solve(qFF, rhs)
            XCTAssertLessThan(relativeError(Tensor(free.map { y[$0] }), yFree), 1e-12)
            let residual = Tensor(free.map { y[$0] - quadratic.target.scalars[$0] })
            let closedForm = 0.1 * x + matmul(AutoDiff.solve(qFF, residual), bF)
            XCTAssertLessThan(relativeError(result.hypergradient, closedForm), 1e-10, "\(solver.name)")
        }
    }

    /// Constraints that depend on x everywhere (an equality with x-dependent coefficients, x-dependent box
    /// rows and bounds): the KKT hypergradient matches central differences of x ↦ F(x, y*(x)) to 1e-6.
    func testXDependentConstraintsMatchFiniteDifferences() throws {
        let n = quadratic.n
        let constraints = LinearConstraints(
            equality: { x in
                let weights = Tensor(shape: [1, n]) { Double($0 + 1) / Double(n) } * (1 + 0.1 * x.slice(alongAxis: 0, 2..<3))
                return (weights, Tensor([0.5]) + 0.05 * x.slice(alongAxis: 0, 1..<2))
            },
            inequality: { x in
                let identity = Tensor(shape: [n, n]) { $0 / n == $0 % n ? 1 : 0 }
                let scaledUpper = identity * (1 + 0.1 * x.slice(alongAxis: 0, 0..<1))
                let bounds = concatenate([Tensor(repeating: 0.4, shape: [n]) + 0.1 * sin(x.slice(alongAxis: 0, 1..<2)), Tensor(zeros: [n])])
                return (concatenate([scaledUpper, -identity]), bounds)
            })
        let problem = quadratic.problem(constraints)
        let result = try KKTImplicit(solver: .conjugateGradient(tolerance: 1e-14), strict: true).hypergradient(of: problem, at: quadratic.x0, from: Tensor(zeros: [n]))
        let lower = try ActiveSetLowerSolver().solve(problem, at: quadratic.x0, from: Tensor(zeros: [n]))
        XCTAssertTrue(lower.activeInequalities.contains { $0 < n } && lower.activeInequalities.contains { $0 >= n }, "upper and lower bounds should both be active: \(lower.activeInequalities)")
        XCTAssertTrue(lower.weaklyActiveInequalities.isEmpty)
        XCTAssertLessThan(lower.stationarityResidual, 1e-12)
        let numeric = try finiteDifferenceGradient(at: quadratic.x0) { try hyperobjective(problem, $0) }
        XCTAssertLessThan(relativeError(result.hypergradient, numeric), 1e-6)
    }

    /// Equality constraints `E y = C x`: the KKT hypergradient equals the closed form from the bordered
    /// system, `dy/dx = [I 0] [Q Eᵀ; E 0]⁻¹ [B; C]`.
    func testEqualityConstrainedMatchesBorderedSystem() throws {
        let (n, m) = (quadratic.n, quadratic.m)
        let e = Tensor(shape: [2, n]) { cos(0.4 * Double($0 / n + 1) * Double($0 % n + 1)) }
        let c = Tensor(shape: [2, m]) { 0.5 * sin(Double($0 / m + $0 % m + 1)) }
        let problem = quadratic.problem(LinearConstraints(equality: { x in (e, matmul(c, x)) }))
        let x = quadratic.x0
        let result = try KKTImplicit(solver: .conjugateGradient(tolerance: 1e-14), strict: true).hypergradient(of: problem, at: x, from: Tensor(zeros: [n]))
        let bordered = concatenate([concatenate([quadratic.q, e.transposed], alongAxis: 1), concatenate([e, Tensor(zeros: [2, 2])], alongAxis: 1)])
        let solution = AutoDiff.solve(bordered, concatenate([matmul(quadratic.b, x), matmul(c, x)]))
        XCTAssertLessThan(relativeError(result.innerSolution, solution.slice(alongAxis: 0, 0..<n)), 1e-12)
        let jacobian = AutoDiff.solve(bordered, concatenate([quadratic.b, c])).slice(alongAxis: 0, 0..<n)
        let closedForm = 0.1 * x + matmul(result.innerSolution - quadratic.target, jacobian)
        XCTAssertLessThan(relativeError(result.hypergradient, closedForm), 1e-10)
    }

    /// Seed 000, Example 2: `y*(θ) = argmin_{y ≥ 1/2} ½ (y − θ)²`, i.e. 1/2 for θ ≤ 1/2 and θ beyond,
    /// with `F = y`: slope 0 left of the kink, 1 right of it; SIGD at and near the kink averages them to
    /// `Φ((θ − 1/2) / σ)`, strictly between.
    func testExampleTwoSlopesAndSmoothedGradient() throws {
        let problem = BilevelProblem(
            upper: { _, y in y.sum() }, lower: { theta, y in 0.5 * (y - theta).squaredNorm() },
            constraints: LinearConstraints(inequality: { _ in (Tensor(shape: [1, 1], scalars: [-1]), Tensor([-0.5])) }))
        let kkt = KKTImplicit(solver: .exact, strict: true)
        for (theta, slope) in [(0.2, 0.0), (0.45, 0.0), (0.55, 1.0), (0.9, 1.0)] {
            let g = try kkt.hypergradient(of: problem, at: Tensor([theta]), from: Tensor([0])).hypergradient.scalars[0]
            XCTAssertEqual(g, slope, accuracy: 1e-12, "θ = \(theta)")
        }
        let sigma = 0.02, samples = 400
        for theta in [0.49, 0.5, 0.51] {
            let result = try SmoothedImplicit(kkt: kkt, sigma: sigma, samples: samples, seed: 7).hypergradient(of: problem, at: Tensor([theta]), from: Tensor([0]))
            let g = result.hypergradient.scalars[0]
            let expected = 0.5 * erfc(-(theta - 0.5) / sigma / 2.0.squareRoot())
            let standardError = (expected * (1 - expected) / Double(samples)).squareRoot()
            XCTAssertGreaterThan(g, 0.05, "θ = \(theta)")
            XCTAssertLessThan(g, 0.95, "θ = \(theta)")
            XCTAssertEqual(g, expected, accuracy: 4 * standardError, "θ = \(theta)")
        }
        let again = try SmoothedImplicit(kkt: kkt, sigma: sigma, samples: 20, seed: 3).hypergradient(of: problem, at: Tensor([0.5]), from: Tensor([0]))
        let same = try SmoothedImplicit(kkt: kkt, sigma: sigma, samples: 20, seed: 3).hypergradient(of: problem, at: Tensor([0.5]), from: Tensor([0]))
        XCTAssertEqual(again.hypergradient.scalars, same.hypergradient.scalars, "a seed determines the estimate")
    }

    /// Without constraints becoming active, the KKT hypergradient is the unconstrained implicit one.
    func testInactiveConstraintsReduceToImplicit() throws {
        let n = quadratic.n
        let problem = quadratic.problem(.box(lower: -10, upper: 10, count: n))
        let kkt = try KKTImplicit(solver: .exact).hypergradient(of: problem, at: quadratic.x0, from: Tensor(zeros: [n]))
        var unconstrained = problem
        unconstrained.constraints = nil  // Implicit refuses constraints (they are inactive here anyway)
        let plain = try Implicit(solver: .exact).hypergradient(of: unconstrained, at: quadratic.x0, innerSolution: kkt.innerSolution)
        XCTAssertLessThan(relativeError(kkt.hypergradient, plain.hypergradient), 1e-12)
    }

    /// Infeasible constraints, a degenerate active set, an unconverged lower solve, a missing constraint
    /// set, a concave lower level and bad SIGD parameters all throw (or report) with a message.
    func testErrorsNameTheProblem() throws {
        let n = quadratic.n, x = quadratic.x0, y0 = Tensor(zeros: [n])
        let exact = KKTImplicit(solver: .exact)
        let infeasible = quadratic.problem(LinearConstraints(inequality: { _ in
            (Tensor(shape: [2, n]) { $0 % n == 0 ? ($0 < n ? 1 : -1) : 0 }, Tensor([0, -1]))
        }))
        XCTAssertThrowsError(try exact.hypergradient(of: infeasible, at: x, from: y0)) { error in
            guard case BilevelError.infeasible = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("inequality row"), "\(error)")
        }
        let duplicated = quadratic.problem(LinearConstraints(inequality: { _ in
            (Tensor(shape: [2, n]) { $0 % n == 4 ? 1 : 0 }, Tensor([0.4, 0.4]))
        }))
        XCTAssertThrowsError(try exact.hypergradient(of: duplicated, at: x, from: y0)) { error in
            guard case BilevelError.degenerateActiveSet = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("inequality row"), "\(error)")
        }
        let logistic = BilevelProblem(
            upper: quadratic.upper, lower: { x, y in softplus(matmul(self.quadratic.b, x) * y).sum() + 0.1 * y.squaredNorm() },
            constraints: .box(lower: -0.2, upper: 0.2, count: n))
        let capped = KKTImplicit(solver: .exact, lowerSolver: ActiveSetLowerSolver(maxIterations: 1))
        let unconverged = try capped.hypergradient(of: logistic, at: x, from: Tensor(repeating: 0.5, shape: [n]))
        XCTAssertFalse(unconverged.diagnostics.converged)
        var strict = capped
        strict.strict = true
        XCTAssertThrowsError(try strict.hypergradient(of: logistic, at: x, from: Tensor(repeating: 0.5, shape: [n]))) { error in
            XCTAssertTrue("\(error)".contains("active-set lower solver did not converge"), "\(error)")
        }
        let unconstrained = BilevelProblem(upper: quadratic.upper, lower: quadratic.lower)
        XCTAssertThrowsError(try exact.hypergradient(of: unconstrained, at: x, from: y0)) { error in
            XCTAssertTrue("\(error)".contains("needs linear constraints"), "\(error)")
        }
        let concave = BilevelProblem(upper: quadratic.upper, lower: { _, y in -y.squaredNorm() }, constraints: .box(lower: 0, upper: 1, count: n))
        XCTAssertThrowsError(try exact.hypergradient(of: concave, at: x, from: y0)) { error in
            XCTAssertTrue("\(error)".contains("not positive definite"), "\(error)")
        }
        let wrongShape = quadratic.problem(LinearConstraints(inequality: { _ in (Tensor(zeros: [2, n + 1]), Tensor(zeros: [2])) }))
        XCTAssertThrowsError(try exact.hypergradient(of: wrongShape, at: x, from: y0)) { error in
            XCTAssertTrue("\(error)".contains("inequality constraint matrix has shape [2, 7] but shape [2, 6] is required"), "\(error)")
        }
        XCTAssertThrowsError(try SmoothedImplicit(kkt: exact, sigma: 0, samples: 5).hypergradient(of: infeasible, at: x, from: y0)) { error in
            XCTAssertTrue("\(error)".contains("sigma"), "\(error)")
        }
    }

    /// `a[rows, columns]` of a matrix.
    func submatrix(_ a: Tensor, _ rows: [Int], _ columns: [Int]) -> Tensor {
        let width = a.shape[1]
        return Tensor(shape: [rows.count, columns.count], scalars: rows.flatMap { i in columns.map { a.scalars[i * width + $0] } })
    }
}

/// A type-erased `HessianInverseSolver`, so one test loop can run several solvers.
struct AnyHessianInverseSolver: HessianInverseSolver {
    let name: String
    private let body: (LinearSystem, Tensor) throws -> LinearSolution

    init(_ solver: some HessianInverseSolver) {
        name = solver.name
        body = solver.solve
    }

    func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution { try body(system, b) }
}

/// The box-constrained P1 and P3 workloads: KKT hypergradients against their closed forms, and P1 against
/// central differences of x ↦ F(w*(x)).
final class BoxWorkloadTests: XCTestCase {
    func testBoxRidgeMatchesClosedFormAndFiniteDifferences() throws {
        let ridge = Fixtures.Ridge(), problem = ridge.boxProblem(), w0 = Tensor(zeros: [ridge.d])
        let result = try KKTImplicit(solver: .conjugateGradient(tolerance: 1e-14), strict: true).hypergradient(of: problem, at: ridge.x0, from: w0)
        let w = result.innerSolution.scalars
        XCTAssertEqual(w.filter { abs($0) < 1e-12 }.count, 11, "\(w)")
        XCTAssertEqual(w.filter { abs($0 - 0.5) < 1e-12 }.count, 5, "\(w)")
        XCTAssertLessThan(relativeError(result.hypergradient, ridge.boxExactHypergradient(ridge.x0, at: result.innerSolution)), 1e-10)
        let numeric = try finiteDifferenceGradient(at: ridge.x0) { x in
            ridge.upper(x, try ActiveSetLowerSolver().solve(problem, at: x, from: w0).y).scalar
        }
        XCTAssertLessThan(relativeError(result.hypergradient, numeric), 1e-6)
    }

    func testBoxHyperCleaningMatchesClosedForm() throws {
        let cleaning = Fixtures.Cleaning(), problem = cleaning.boxProblem(), w0 = Tensor(zeros: [cleaning.d])
        let result = try KKTImplicit(solver: .conjugateGradient(tolerance: 1e-14), strict: true).hypergradient(of: problem, at: cleaning.x0, from: w0)
        let active = result.innerSolution.scalars.filter { abs(abs($0) - 0.3) < 1e-12 }.count
        XCTAssertGreaterThan(active, 0)
        XCTAssertLessThan(active, cleaning.d)
        XCTAssertLessThan(relativeError(result.hypergradient, cleaning.boxExactHypergradient(cleaning.x0, at: result.innerSolution)), 1e-9)
    }

    /// Newton steps near y* promise decreases below f's rounding; the line search must still take them
    /// whole, so SQP converges quadratically (6 iterations; 11 when noise halved the last steps).
    func testBoxHyperCleaningLowerSolveConvergesQuadratically() throws {
        let cleaning = Fixtures.Cleaning()
        let lower = try ActiveSetLowerSolver().solve(cleaning.boxProblem(), at: cleaning.x0, from: Tensor(zeros: [cleaning.d]))
        XCTAssertTrue(lower.converged)
        XCTAssertLessThanOrEqual(lower.iterations, 7)
        XCTAssertLessThan(lower.stationarityResidual, 1e-12)
    }
}
