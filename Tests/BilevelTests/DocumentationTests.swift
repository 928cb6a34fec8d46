import XCTest
@testable import Bilevel
import Workloads

/// Runs the snippets of Docs/bilevel.md verbatim (DocSnippetTests checks they appear here) and checks
/// their numbers.
final class DocumentationTests: XCTestCase {
    func testWorkedRidgeExample() throws {
        let ridge = RidgeWorkload(n: 200, d: 20)            // data from shared/workloads.md
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
        XCTAssertLessThan(run.upperValues.last!, 0.9 * run.upperValues.first!)
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
        XCTAssertGreaterThan(cheap.diagnostics.referenceError!, 0)
    }
}
