import Foundation
import XCTest
@testable import Bilevel
import Workloads

/// Methods for lower levels with several minimisers and value-function reformulations: BDA choosing the
/// minimiser best for F, pessimistic aggregation choosing the worst, and BVFIM against a closed form.
final class AggregationTests: XCTestCase {
    /// A quadratic bilevel problem with a closed-form hypergradient: `f = ½yᵀAy − (Bx)ᵀy` (A symmetric
    /// positive definite, eigenvalues in [1, 3]), `F = ½‖y − c‖² + 0.05‖x‖²`, so `y*(x) = A⁻¹Bx` and
    /// `∇Φ(x) = 0.1 x + BᵀA⁻¹(y* − c)`.
    struct Quadratic {
        let a = Tensor(shape: [3, 3], scalars: [2.0, 0.5, 0.2, 0.5, 1.8, -0.3, 0.2, -0.3, 1.5])
        let b = Tensor(shape: [3, 2], scalars: [1.0, -0.5, 0.3, 0.8, -0.6, 0.4])
        let c = Tensor([0.4, -0.3, 0.9])
        var problem: BilevelProblem {
            let (a, b, c) = (a, b, c)
            return BilevelProblem(
                upper: { x, y in 0.5 * (y - c).squaredNorm() + 0.05 * x.squaredNorm() },
                lower: { x, y in 0.5 * dot(y, matmul(a, y)) - dot(matmul(b, x), y) },
                dynamics: .gradientDescent(step: 0.3), innerSteps: 400)
        }
        func hypergradient(_ x: Tensor) -> Tensor {
            let y = AutoDiff.solve(a, matmul(b, x))
            return 0.1 * x + matmul(AutoDiff.solve(a, y - c), b)
        }
    }

    /// BVFIM on the path μ₁ = μ₂ = s², θ = τ = s approaches the closed-form hypergradient with error O(s):
    /// it falls about 10× per decade of s (s = 0.1, 0.01, 0.001), using gradients only.
    func testBVFIMApproachesTheClosedFormAsItsParametersVanish() throws {
        let quadratic = Quadratic(), x = Tensor([0.7, -1.2]), exact = quadratic.hypergradient(x)
        var errors: [Double] = []
        for s in [0.1, 0.01, 0.001] {
            let result = try BVFIM(scale: s).hypergradient(of: quadratic.problem, at: x, from: Tensor(zeros: [3]))
            errors.append(relativeError(result.hypergradient, exact))
            print("BVFIM s = \(s): error \(errors.last!); \(result.diagnostics)")
            XCTAssertTrue(result.diagnostics.converged, "s = \(s): \(result.diagnostics)")
            XCTAssertEqual(result.diagnostics.counts.hvps + result.diagnostics.counts.mixedProducts + result.diagnostics.counts.jvps + result.diagnostics.counts.vjps, 0)
        }
        for i in 1..<3 { XCTAssertLessThan(errors[i], 0.2 * errors[i - 1], "\(errors)") }
        XCTAssertLessThan(errors[2], 2e-3, "\(errors)")
    }

    /// The outer loop BVFIM is meant for: gradient descent on x with the parameters decreasing across outer
    /// steps (`methodAtStep`, s_k = 0.05 · 0.93^k, 100 steps) reaches the closed-form minimiser
    /// `x* = (BᵀA⁻²B + 0.1 I)⁻¹ BᵀA⁻¹c` of Φ(x) = F(x, y*(x)), where the closed-form hypergradient vanishes.
    func testBVFIMWithDecreasingParametersReachesTheBilevelOptimum() throws {
        let quadratic = Quadratic(), (a, b, c) = (quadratic.a, quadratic.b, quadratic.c)
        let aInverseB = AutoDiff.solve(a, b)
        let normal = matmul(aInverseB, aInverseB, transposeA: true, transposeB: false) + 0.1 * Tensor(shape: [2, 2]) { $0 / 2 == $0 % 2 ? 1 : 0 }
        let optimum = AutoDiff.solve(normal, matmul(c, aInverseB))
        XCTAssertLessThan(quadratic.hypergradient(optimum).squaredNorm().scalar.squareRoot(), 1e-12)
        let run = try minimize(
            quadratic.problem, methodAtStep: { k in BVFIM(scale: 0.05 * pow(0.93, Double(k))) }, from: Tensor([0.7, -1.2]), y0: Tensor(zeros: [3]),
            optimizer: .gradientDescent(step: 0.5), steps: 100, warmStart: true)
        let distance = relativeError(run.x, optimum)
        print("BVFIM outer loop: x = \(run.x.scalars), x* = \(optimum.scalars), relative error \(distance)")
        XCTAssertLessThan(distance, 1e-4)
    }

    /// Bad parameters and constraints throw, naming the parameter.
    func testBVFIMRejectsBadParameters() {
        let problem = Quadratic().problem, x = Tensor([0.7, -1.2]), y0 = Tensor(zeros: [3])
        let cases: [(BVFIM, String)] = [
            (BVFIM(lowerRegularization: 0, valueShift: 1, upperRegularization: 1, barrier: 1), "BVFIM.lowerRegularization (μ₁)"),
            (BVFIM(lowerRegularization: 1, valueShift: -1, upperRegularization: 1, barrier: 1), "BVFIM.valueShift (μ₂)"),
            (BVFIM(lowerRegularization: 1, valueShift: 1, upperRegularization: .nan, barrier: 1), "BVFIM.upperRegularization (θ)"),
            (BVFIM(lowerRegularization: 1, valueShift: 1, upperRegularization: 1, barrier: 0), "BVFIM.barrier (τ)"),
            (BVFIM(scale: 0.1, barrierIterations: 0), "Q₂"),
            (BVFIM(scale: 0.1, lowerIterations: 0), "BVFIM.innerSteps"),
        ]
        for (method, fragment) in cases {
            XCTAssertThrowsError(try method.hypergradient(of: problem, at: x, from: y0)) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
        var constrained = problem
        constrained.constraints = .box(lower: -1, upper: 1, count: 3)
        XCTAssertThrowsError(try BVFIM(scale: 0.1).hypergradient(of: constrained, at: x, from: y0)) { XCTAssertTrue("\($0)".contains("KKTImplicit"), "\($0)") }
    }

    /// Liu et al.'s BDA example: `f = ½y₁² − x y₁` leaves y₂ free (S(x) = {(x, y₂)}), `F = ½(x − y₂)² +
    /// ½(y₁ − 1)²`. The optimistic value is `φ(x) = ½(x − 1)²`, `∇φ(3) = 2`, reached with y₂ = x. Plain RAD
    /// from y₂ = 0 never moves y₂ and differentiates `½x² + ½(x − 1)²`, giving 5; BDA moves y₂ to x and
    /// returns ∇φ to 2%, the derivative of its own unrolled map (checked by finite differences).
    func testBDASelectsTheLowerMinimiserBestForF() throws {
        let problem = SeveralMinimisers.continuum
        let x = Tensor([3.0]), y0 = Tensor(zeros: [2])
        let bda = BDA(aggregation: 0.5, upperStep: 1.8, upperSchedule: .harmonic, innerStep: 1)
        let result = try bda.hypergradient(of: problem, at: x, from: y0)
        let plain = try ReverseUnroll().hypergradient(of: problem, at: x, from: y0)
        print("BDA: ∇ = \(result.hypergradient.scalars), y_T = \(result.innerSolution.scalars); plain RAD: ∇ = \(plain.hypergradient.scalars), y_T = \(plain.innerSolution.scalars)")
        XCTAssertEqual(result.hypergradient.scalars[0], SeveralMinimisers.continuumOptimisticHypergradient(3), accuracy: 0.04)
        XCTAssertEqual(result.innerSolution.scalars[1], 3, accuracy: 0.01, "BDA picks y₂ = x, the minimiser best for F")
        XCTAssertEqual(plain.hypergradient.scalars[0], 5, accuracy: 1e-10)
        XCTAssertEqual(plain.innerSolution.scalars[1], 0)
        let fd = try finiteDifferenceGradient(at: x, step: 1e-5) { x in try bdaObjective(problem, x, y0: y0, mu: 0.5, alpha: 1.8, beta: 1, sign: 1) }
        XCTAssertLessThan(relativeError(result.hypergradient, fd), 1e-7)
    }

    /// A double-well lower level `f = ½(y₁ − x)² + ¼(y₂² − 1)²` with S(x) = {(x, 1), (x, −1)} and
    /// `F = ½(y₁ − 1)² + x y₂`. For x > 0 the optimistic follower picks y₂ = −1 and the pessimistic one
    /// y₂ = +1: `φ_o = ½(x − 1)² − x`, `φ_p = ½(x − 1)² + x`, apart by 2x in value and 2 in slope. At x = 0.5
    /// BDA and pessimistic BDA (same parameters) land in opposite wells and return ∇φ_o = −1.5 and
    /// ∇φ_p = 0.5 to 2%; plain RAD from y₂ = 0 sits on the saddle and returns neither (x − 1 = −0.5).
    func testPessimisticAndOptimisticAggregationSelectOppositeMinimisers() throws {
        let problem = SeveralMinimisers.doubleWell
        let x = Tensor([0.5]), y0 = Tensor(zeros: [2])
        let optimistic = try BDA(aggregation: 0.5, upperStep: 1, innerStep: 0.5).hypergradient(of: problem, at: x, from: y0)
        let pessimistic = try PessimisticBDA(aggregation: 0.5, upperStep: 1, innerStep: 0.5).hypergradient(of: problem, at: x, from: y0)
        let plain = try ReverseUnroll().hypergradient(of: problem, at: x, from: y0)
        let valueGap = problem.upper(x, pessimistic.innerSolution).scalar - problem.upper(x, optimistic.innerSolution).scalar
        print("optimistic ∇ = \(optimistic.hypergradient.scalars), y_T = \(optimistic.innerSolution.scalars); pessimistic ∇ = \(pessimistic.hypergradient.scalars), y_T = \(pessimistic.innerSolution.scalars); F gap \(valueGap); plain RAD ∇ = \(plain.hypergradient.scalars)")
        XCTAssertEqual(optimistic.hypergradient.scalars[0], SeveralMinimisers.doubleWellHypergradients(0.5).optimistic, accuracy: 0.01)
        XCTAssertEqual(pessimistic.hypergradient.scalars[0], SeveralMinimisers.doubleWellHypergradients(0.5).pessimistic, accuracy: 0.01)
        XCTAssertEqual(optimistic.innerSolution.scalars[1], -1, accuracy: 0.01)
        XCTAssertEqual(pessimistic.innerSolution.scalars[1], 1, accuracy: 0.01)
        XCTAssertEqual(valueGap, 2 * 0.5, accuracy: 0.02)
        XCTAssertEqual(plain.hypergradient.scalars[0], -0.5, accuracy: 1e-10)
        XCTAssertEqual(pessimistic.diagnostics.counts.vjps, 200)
        let fd = try finiteDifferenceGradient(at: x, step: 1e-5) { x in try bdaObjective(problem, x, y0: y0, mu: 0.5, alpha: 1, beta: 0.5, sign: -1) }
        XCTAssertLessThan(relativeError(pessimistic.hypergradient, fd), 1e-7)
        XCTAssertThrowsError(try PessimisticBDA(aggregation: -0.1, upperStep: 1).hypergradient(of: problem, at: x, from: y0)) {
            XCTAssertTrue("\($0)".contains("BDA.aggregation (μ)"), "\($0)")
        }
    }

    /// `F(x, y_T(x))` after T aggregated steps `y ← y − (sign μ α/(t+1) ∇ᵧF + (1 − μ) β ∇ᵧf)`, written
    /// independently of `BDA` (values only).
    private func bdaObjective(_ problem: BilevelProblem, _ x: Tensor, y0: Tensor, mu: Double, alpha: Double, beta: Double, sign: Double) throws -> Double {
        var y = y0
        for t in 0..<problem.innerSteps {
            let upper = gradient(at: y) { problem.upper(x, $0) }, lower = gradient(at: y) { problem.lower(x, $0) }
            y = y - (sign * mu * alpha / Double(t + 1) * upper + (1 - mu) * beta * lower)
        }
        return problem.upper(x, y).scalar
    }
}
