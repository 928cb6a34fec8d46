import XCTest
@testable import Bilevel
import Workloads

/// Runs the snippets of Docs/bilevel.md verbatim (DocSnippetTests checks they appear here) and checks
/// their numbers.
final class DocumentationTests: XCTestCase {
    func testWorkedRidgeExample() throws {
        let ridge = RidgeWorkload(n: 200, d: 20)            // data from Docs/workloads.md
        let problem = BilevelProblem(
            upper: { x, w in 0.5 / 100 * (matmul(ridge.c, w) - ridge.dv).squaredNorm() },
            lower: { x, w in 0.5 / 200 * (matmul(ridge.a, w) - ridge.b).squaredNorm() + 0.5 * (exp(x) * w * w).sum() },
            dynamics: .gradientDescent(step: ridge.eta),
            innerSteps: 100)
        let w0 = Tensor(zeros: [20])

        // One hypergradient, three ways: unrolled (RAD), truncated (TRAD), implicit (CG).
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: w0)
        let trad = try TruncatedReverseUnroll(truncation: 10).hypergradient(of: problem, at: ridge.x0, from: w0)
        let implicit = try Implicit(solver: .conjugateGradient(maxIterations: 50, tolerance: 1e-10))
            .hypergradient(of: problem, at: ridge.x0, from: w0)
        print(rad.diagnostics)        // inner steps 100, gradients 1, HVPs 0, mixed 0, JVPs 0, VJPs 100, …
        print(implicit.diagnostics)   // … solver iterations, residual …

        // Tune x: 30 Adam steps on the hypergradient, warm-starting each inner loop.
        let run = try minimize(problem, method: Implicit(solver: .conjugateGradient()), from: ridge.x0, y0: w0,
                               optimizer: .adam(step: 0.1), steps: 30, warmStart: true)
        print(run.upperValues.first!, "→", run.upperValues.last!)   // the validation loss goes down

        let exact = ridge.exactHypergradient(ridge.x0)
        XCTAssertTrue(rad.hypergradient.isApproximatelyEqual(to: ridge.unrolledHypergradient(ridge.x0, steps: 100), tolerance: 1e-10))
        XCTAssertTrue(trad.hypergradient.isApproximatelyEqual(to: ridge.unrolledHypergradient(ridge.x0, steps: 100, truncation: 10), tolerance: 1e-10))
        XCTAssertTrue(implicit.hypergradient.isApproximatelyEqual(to: exact, tolerance: 1e-8))
        XCTAssertEqual(rad.diagnostics.counts.vjps, 100)
        let reference = try minimize(problem, method: ClosedFormHypergradient { x in (ridge.exactHypergradient(x), ridge.solution(x)) },
                                     from: ridge.x0, y0: w0, optimizer: .adam(step: 0.1), steps: 30)
        print("implicit-CG run vs the closed-form run: \(relativeDistance(run.x, to: reference.x, from: ridge.x0))")
        XCTAssertLessThan(relativeDistance(run.x, to: reference.x, from: ridge.x0), 1e-2, "the run follows the exact hypergradient")
    }

    func testWorkedConstrainedExample() throws {
        let ridge = RidgeWorkload(n: 200, d: 20)
        let problem = BilevelProblem(
            upper: { x, w in 0.5 / 100 * (matmul(ridge.c, w) - ridge.dv).squaredNorm() },
            lower: { x, w in 0.5 / 200 * (matmul(ridge.a, w) - ridge.b).squaredNorm() + 0.5 * (exp(x) * w * w).sum() })
        let w0 = Tensor(zeros: [20])

        // Non-negative weights with a budget: 0 ≤ w ≤ 0.5 and Σ w ≤ 1.5 (the rows of G w ≤ h).
        let d = 20
        let identity = Tensor(shape: [d, d]) { $0 / d == $0 % d ? 1 : 0 }
        var boxed = problem
        boxed.constraints = LinearConstraints(inequality: { _ in
            (concatenate([identity, -identity, Tensor(ones: [1, d])]),
             concatenate([Tensor(repeating: 0.5, shape: [d]), Tensor(zeros: [d]), Tensor([1.5])]))
        })
        let kkt = try KKTImplicit(solver: .conjugateGradient(tolerance: 1e-12))
            .hypergradient(of: boxed, at: ridge.x0, from: w0)
        print(kkt.diagnostics.notes)   // SQP iterations, active inequality rows, …
        let smoothed = try SmoothedImplicit(kkt: KKTImplicit(solver: .conjugateGradient()), sigma: 1e-4, samples: 10)
            .hypergradient(of: boxed, at: ridge.x0, from: w0)
        let cheap = try KKTImplicit(solver: .hessianFree(lambda: 0.5, compareWith: .conjugateGradient()))
            .hypergradient(of: boxed, at: ridge.x0, from: w0)
        print(cheap.diagnostics.referenceError!)   // how far H ≈ λI is from the CG solve

        let exact = try KKTImplicit(solver: .exact).hypergradient(of: boxed, at: ridge.x0, from: w0)
        XCTAssertLessThan((kkt.hypergradient - exact.hypergradient).squaredNorm().scalar.squareRoot(), 1e-9 * exact.hypergradient.squaredNorm().scalar.squareRoot())
        XCTAssertEqual(kkt.innerSolution.sum().scalar, 1.5, accuracy: 1e-12, "the budget row is active")
        XCTAssertLessThan((smoothed.hypergradient - exact.hypergradient).squaredNorm().scalar.squareRoot(), 1e-2 * exact.hypergradient.squaredNorm().scalar.squareRoot())
        // The reference error is ‖P∇ᵧF/λ − v*‖/‖v*‖, v* the solve of the reduced system on the null space of
        // the active rows (bounds at w* and the budget), here from the dense Hessian.
        let w = exact.innerSolution, n = 20
        let activeRows = (0..<n).filter { w.scalars[$0] < 1e-9 || w.scalars[$0] > 0.5 - 1e-9 }
            .map { i in (0..<n).map { $0 == i ? 1.0 : 0 } } + [[Double](repeating: 1, count: n)]
        let nullSpace = try NullSpace(rows: Tensor(shape: [activeRows.count, n], scalars: activeRows.flatMap { $0 }), names: activeRows.indices.map { "row \($0)" })
        let identity20 = Tensor(shape: [n, n]) { $0 / n == $0 % n ? 1 : 0 }
        let projector = Tensor(shape: [n, n], scalars: (0..<n).flatMap { nullSpace.project(identity20.slice(alongAxis: 0, $0..<($0 + 1)).reshaped(to: [n])).scalars })
        let h = hessian(at: w) { problem.lower(ridge.x0, $0) }
        let reduced = matmul(matmul(projector, h), projector) + identity20 - projector
        let rhs = nullSpace.project(gradient(at: w) { problem.upper(ridge.x0, $0) })
        let vStar = AutoDiff.solve(reduced, rhs)
        let expectedError = ((rhs / 0.5 - vStar).squaredNorm().scalar / vStar.squaredNorm().scalar).squareRoot()
        XCTAssertEqual(cheap.diagnostics.referenceError!, expectedError, accuracy: 1e-6 * expectedError)
    }
}
