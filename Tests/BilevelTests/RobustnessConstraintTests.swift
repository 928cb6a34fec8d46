import XCTest
@testable import Bilevel

/// Constraints are never silently ignored: a method that cannot honour them throws
/// `unsupportedConstraints` naming itself and the methods that can; PBGD honours them by projection; the
/// mini-batch HVP inside `KKTImplicit` is projected like the full one.
final class RobustnessConstraintTests: XCTestCase {
    static var box: LinearConstraints { .box(lower: 0, upper: 1, count: 3) }

    func testMethodsThatIgnoreConstraintsThrow() {
        let problem = Robustness.quadratic(constraints: Self.box)
        let signProblem = Robustness.quadratic(dynamics: .signGradientDescent(step: 0.01), constraints: Self.box)
        let cases = Robustness.unconstrainedMethods().map { ($0, problem) } + [(SignUnroll() as any HypergradientMethod, signProblem)]
        for (method, problem) in cases {
            let error = bilevelError { try method.hypergradient(of: problem, at: Robustness.x, from: Robustness.y0) }
            guard case let .unsupportedConstraints(name, supported)? = error else { XCTFail("\(method.name): \(String(describing: error))"); continue }
            XCTAssertEqual(name, method.name)
            XCTAssertEqual(supported.count, 3)
            assertMentions("\(error!)", [method.name, "cannot honour problem.constraints", "KKTImplicit", "SmoothedImplicit", "PBGD"])
        }
    }

    func testImplicitAtAGivenInnerSolutionRefusesConstraints() {
        let problem = Robustness.quadratic(constraints: Self.box)
        let error = bilevelError { try Implicit(solver: .conjugateGradient()).hypergradient(of: problem, at: Robustness.x, innerSolution: Robustness.x) }
        guard case let .unsupportedConstraints(name, _)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(name, "implicit-cg")
    }

    func testTheDecisionIsTheProtocolRequirement() {
        XCTAssertTrue(Robustness.constrainedMethods().allSatisfy(\.honoursConstraints))
        XCTAssertTrue(Robustness.unconstrainedMethods().allSatisfy { !$0.honoursConstraints })
        XCTAssertFalse(SignUnroll().honoursConstraints)
    }

    /// Constant box `[0, 1]³`, `f = ½‖y − x‖²`, `F = ½‖y‖²`: `z* = clip(x)`, and PBGD's x-gradient
    /// `∇ₓF + γ(∇ₓf(x, y) − ∇ₓf(x, z*)) = γ (clip(x) − y)`. Ignoring the box gives `γ (x − y)`.
    func testPBGDProjectsOntoAConstantBox() throws {
        let x = Tensor([2, -1, 0.5]), y0 = Tensor([0.5, 0.5, 0.5])
        let result = try PBGD(penalty: 1, innerSteps: 100, innerStep: 0.5).hypergradient(
            of: Robustness.quadratic(constraints: Self.box), at: x, from: y0)
        XCTAssertLessThan(relativeError(result.hypergradient, Tensor([0.5, -0.5, 0])), 1e-12, "\(result.hypergradient)")
        XCTAssertTrue(result.innerSolution.scalars.allSatisfy { $0 >= -1e-12 && $0 <= 1 + 1e-12 }, "\(result.innerSolution)")
    }

    /// `y ≤ x` (depends on x), `f = ½‖y − c‖²`, `c = 1`: `v(x) = ½ Σ_{xᵢ<1} (xᵢ − 1)²`, so Danskin's
    /// `∇v = −μ` with `μ = (1 − x)₊`, and PBGD's x-gradient (F and f free of x) is `γ μ`.
    func testPBGDDifferentiatesAnXDependentConstraint() throws {
        let identity = Tensor(shape: [3, 3]) { $0 / 3 == $0 % 3 ? 1 : 0 }
        let problem = BilevelProblem(
            upper: { _, y in 0.5 * y.squaredNorm() }, lower: { _, y in 0.5 * (y - 1).squaredNorm() },
            constraints: LinearConstraints(inequality: { x in (identity, x) }), lowerShape: [3])
        let x = Tensor([0.2, 0.5, 2])
        let result = try PBGD(penalty: 2, innerSteps: 200, innerStep: 0.5).hypergradient(of: problem, at: x, from: Tensor(zeros: [3]))
        XCTAssertLessThan(relativeError(result.hypergradient, Tensor([1.6, 1.0, 0])), 1e-10, "\(result.hypergradient)")
    }

    /// Two samples `f_i = ½ yᵀ diag(a_i) y − xᵀy` with `Σ y = 1`: a mini-batch of both samples has the full
    /// Hessian, so with one draw (same truncation) the mini-batch stochastic Neumann solve inside
    /// `KKTImplicit` must equal the full one — it did not while the batch HVP skipped the projection.
    func testKKTProjectsTheMiniBatchHVP() throws {
        let curvatures = [Tensor([1, 2, 3]), Tensor([1, 4, 6])]
        let batch: (Tensor, Tensor, [Int]) -> Tensor = { x, y, indices in
            indices.map { 0.5 * dot(y, curvatures[$0] * y) - dot(x, y) }.reduce(Tensor(0), +) / Double(indices.count)
        }
        let problem = BilevelProblem(
            upper: { _, y in 0.5 * (y - Tensor([1, 0, 0])).squaredNorm() }, lower: { x, y in batch(x, y, [0, 1]) },
            lowerBatch: batch, lowerSampleCount: 2,
            constraints: LinearConstraints(equality: { _ in (Tensor(shape: [1, 3], scalars: [1, 1, 1]), Tensor([1])) }), lowerShape: [3])
        let x = Tensor([0.3, -0.2, 0.5]), y0 = Tensor([0.2, 0.3, 0.5])
        func run(_ batchSize: Int?) throws -> HypergradientResult {
            try KKTImplicit(solver: .stochasticNeumann(terms: 30, step: 0.2, batchSize: batchSize, seed: 3)).hypergradient(of: problem, at: x, from: y0)
        }
        let full = try run(nil), miniBatch = try run(2)
        XCTAssertGreaterThan(miniBatch.diagnostics.solverIterations!, 0)
        XCTAssertEqual(full.diagnostics.solverIterations, miniBatch.diagnostics.solverIterations)
        XCTAssertLessThan(relativeError(miniBatch.hypergradient, full.hypergradient), 1e-12, "\(miniBatch.hypergradient) vs \(full.hypergradient)")
    }
}
