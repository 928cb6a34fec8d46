import XCTest
import AutoDiff
@testable import Bilevel
import Workloads

/// The dense lower Hessian of a staged problem comes from one replay of the HVP program batched over the
/// basis directions (`BilevelOracle.lowerHessian`, `LinearSystem.denseMatrix`) — or, when the HVP is
/// specialized to `(x, y)` (P3), from n replays of the specialized program: the same matrix as the eager
/// column loop `apply(e_i)` (≤ 1e-12), with or without a null-space projection, counted as n HVPs.
final class ExactHessianTests: XCTestCase {
    private let ridge = RidgeWorkload(n: 40, d: 8)
    private let p3 = HyperCleaningWorkload(n: 60, m: 20, d: 10)

    private func staged(_ problem: BilevelProblem) -> BilevelProblem {
        var staged = problem
        staged.derivatives = .staged
        return staged
    }

    private func maxDifference(_ a: Tensor, _ b: Tensor) -> Double {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    /// The matrix whose column i is `system.apply(e_i)`: the eager column loop `ExactSolve` used to run.
    private func columnLoop(_ system: LinearSystem) -> Tensor {
        let n = system.y.count
        let columns = (0..<n).map { i in system.apply(Tensor(shape: system.y.shape) { $0 == i ? 1 : 0 }).scalars }
        return Tensor(shape: [n, n], scalars: columns.flatMap { $0 }).transposed
    }

    /// The staged dense matrix against the eager column loop, on a system at `(x, y)`; checks both counted
    /// n HVPs and which staged path ran: one batched replay (`batched`, the program staged, not evaluated
    /// eagerly) or, for an HVP specialized to `(x, y)`, the specialized program with no batched one.
    private func checkDenseMatrix(
        _ problem: BilevelProblem, x: Tensor, y: Tensor, nullSpace: NullSpace? = nil, batched expectBatched: Bool
    ) throws -> Tensor {
        let stagedProblem = staged(problem)
        let stagedOracle = BilevelOracle(stagedProblem), eagerOracle = BilevelOracle(problem)
        let dense = try LinearSystem(oracle: stagedOracle, x: x, y: y, nullSpace: nullSpace).denseMatrix()
        let reference = columnLoop(LinearSystem(oracle: eagerOracle, x: x, y: y, nullSpace: nullSpace))
        let scale = reference.scalars.map { abs($0) }.max() ?? 1
        XCTAssertLessThanOrEqual(maxDifference(dense, reference), 1e-12 * scale)
        XCTAssertEqual(stagedOracle.counts, eagerOracle.counts)
        XCTAssertEqual(stagedOracle.counts.hvps, y.count)
        let batched = stagedProblem.stagedPrograms.filter { $0.derivative == StagedDerivative.lowerHVPs.rawValue }
        XCTAssertEqual(batched.count, expectBatched ? 1 : 0)
        if expectBatched {
            XCTAssertNotNil(batched.first?.applicationCount, "the batched HVP program fell back to eager evaluation")
        } else {
            let single = stagedProblem.stagedPrograms.filter { $0.derivative == StagedDerivative.lowerHVP.rawValue }
            XCTAssertNotNil(single.first?.applicationCount, "the HVP program fell back to eager evaluation")
        }
        return dense
    }

    /// P1 (ridge, `H = AᵀA/n + diag(exp x)`) and P3 (hyper-cleaning, weighted logistic loss): the staged
    /// Hessian equals the eager column loop and, for P1, the closed form.
    func testStagedHessianEqualsEagerColumnLoop() throws {
        let x = ridge.x0, w = ridge.solution(x)
        let dense = try checkDenseMatrix(ridge.problem(steps: 1), x: x, y: w, batched: true)
        XCTAssertLessThanOrEqual(maxDifference(dense, ridge.hessian(x)), 1e-12)
        _ = try checkDenseMatrix(p3.problem(steps: 1), x: p3.x0, y: p3.solution(p3.x0), batched: false)
    }

    /// With a null space the dense matrix is `P H P + (I − P)`, column for column `apply(e_i)`, on both
    /// staged paths (P1 batched, P3 specialized); dropping the projection (returning H) would differ from it
    /// by far more than the tolerance.
    func testConstrainedDenseMatrixIsProjected() throws {
        let cases = [
            (ridge.problem(steps: 1), ridge.x0, ridge.solution(ridge.x0), true),
            (p3.problem(steps: 1), p3.x0, p3.solution(p3.x0), false),
        ]
        for (problem, x, y, batched) in cases {
            let d = y.count
            // Two independent constraint rows: the all-ones row (a budget) and a ramp.
            let rows = Tensor(shape: [2, d]) { $0 < d ? 1 : Double($0 - d) - 4.5 }
            let nullSpace = try NullSpace(rows: rows, names: ["row 0", "row 1"])
            let projected = try checkDenseMatrix(problem, x: x, y: y, nullSpace: nullSpace, batched: batched)
            let hessian = try BilevelOracle(problem).lowerHessian(x, y)
            XCTAssertGreaterThan(maxDifference(projected, hessian), 1e-3)
            // On the row space of the constraints M is the identity: M aᵀ = aᵀ for a row a of the constraints.
            let row = rows[0]
            XCTAssertLessThanOrEqual(maxDifference(matmul(projected, row), row), 1e-12)
        }
    }

    /// The batched rows are the HVPs of their own directions, in order: with a non-symmetric matrix of
    /// directions V (so a transposed or permuted result would differ), row k of `lowerHVPs` is `H v_k`.
    func testBatchedRowsFollowTheirDirections() throws {
        let x = p3.x0, y = p3.solution(x), d = p3.d
        let directions = Tensor(shape: [d, d]) { Double(($0 * 13) % 11) - 5 + 0.01 * Double($0) }
        XCTAssertGreaterThan(maxDifference(directions, directions.transposed), 1)
        let oracle = BilevelOracle(staged(p3.problem(steps: 1)))
        let rows = try oracle.lowerHVPs(x, y, directions: directions)
        XCTAssertEqual(oracle.counts.hvps, d)
        let expected = Tensor(shape: [d, d], scalars: (0..<d).flatMap { k in
            hvp(at: y, direction: directions[k]) { p3.lower(x, $0) }.scalars
        })
        let scale = expected.scalars.map { abs($0) }.max() ?? 1
        XCTAssertLessThanOrEqual(maxDifference(rows, expected), 1e-12 * scale)
        XCTAssertGreaterThan(maxDifference(rows.transposed, expected), 1e-6 * scale)
        // Directions that are not rows of y's shape are refused, naming the quantity and both shapes.
        XCTAssertThrowsError(try oracle.lowerHVPs(x, y, directions: Tensor(zeros: [3, d + 1]))) { error in
            guard case let .shapeMismatch(name, expected, actual)? = error as? BilevelError else { return XCTFail("\(error)") }
            XCTAssertTrue(name.contains("lowerHVPs directions"), name)
            XCTAssertEqual(expected, [3, d])
            XCTAssertEqual(actual, [3, d + 1])
        }
    }

    /// `ExactSolve` through the staged batched Hessian gives the eager hypergradient (≤ 1e-12) with equal counts.
    func testExactSolveStagedMatchesEager() throws {
        for (problem, x, y) in [
            (ridge.problem(steps: 1), ridge.x0, ridge.solution(ridge.x0)), (p3.problem(steps: 1), p3.x0, p3.solution(p3.x0)),
        ] {
            let eager = try Implicit(solver: ExactSolve()).hypergradient(of: problem, at: x, innerSolution: y)
            let stagedResult = try Implicit(solver: ExactSolve()).hypergradient(of: staged(problem), at: x, innerSolution: y)
            let scale = eager.hypergradient.scalars.map { abs($0) }.max() ?? 1
            XCTAssertLessThanOrEqual(maxDifference(stagedResult.hypergradient, eager.hypergradient), 1e-12 * scale)
            XCTAssertEqual(stagedResult.diagnostics.counts, eager.diagnostics.counts)
            XCTAssertEqual(stagedResult.diagnostics.counts.hvps, y.count + 1)
        }
    }
}
