import Foundation
import XCTest
@testable import Bilevel

/// The cheap Hessian-inverse approximations: Hessian-free (`H ≈ λI`) and WoodFisher (`γI + Fisher`), each
/// exact on the Hessians it assumes, and their comparison against a CG solve.
final class ApproximateSolverTests: XCTestCase {
    let b = Tensor(shape: [5, 3]) { 0.8 * sin(1.1 * Double($0 / 3 + 1) + 0.6 * Double($0 % 3 + 1)) }
    let x0 = Tensor([0.4, -0.7, 0.2])
    let target = Tensor((0..<5).map { 0.5 * cos(Double($0) + 0.3) })

    func upper(_ x: Tensor, _ y: Tensor) -> Tensor { 0.5 * (y - target).squaredNorm() + 0.1 * dot(x, x) }

    /// `f = ½λ‖y‖² − (Bx)ᵀy + 0.3 sin(x₀) Σy` has `H = λ I`: Hessian-free equals the exact solve without a
    /// single HVP, and `compareWith` reports 0 error (and `|λ/λ' − 1|` for a wrong λ').
    func testHessianFreeIsExactForIsotropicHessian() throws {
        let lambda = 1.7
        let problem = BilevelProblem(upper: upper, lower: { x, y in
            0.5 * lambda * y.squaredNorm() - dot(matmul(self.b, x), y) + 0.3 * sin(x.slice(alongAxis: 0, 0..<1)).sum() * y.sum()
        })
        let y = Tensor((0..<5).map { 0.2 * Double($0) - 0.3 })
        let exact = try Implicit(solver: .exact).hypergradient(of: problem, at: x0, innerSolution: y)
        let free = try Implicit(solver: .hessianFree(lambda: lambda)).hypergradient(of: problem, at: x0, innerSolution: y)
        XCTAssertLessThan(relativeError(free.hypergradient, exact.hypergradient), 1e-13)
        XCTAssertEqual(free.diagnostics.counts.hvps, 0)
        XCTAssertNil(free.diagnostics.referenceError)
        let compared = try Implicit(solver: .hessianFree(lambda: lambda, compareWith: .conjugateGradient())).hypergradient(of: problem, at: x0, innerSolution: y)
        XCTAssertLessThan(compared.diagnostics.referenceError!, 1e-12)
        let wrong = try Implicit(solver: .hessianFree(lambda: 2 * lambda, compareWith: .conjugateGradient())).hypergradient(of: problem, at: x0, innerSolution: y)
        XCTAssertEqual(wrong.diagnostics.referenceError!, 0.5, accuracy: 1e-10)
        XCTAssertTrue(wrong.diagnostics.description.contains("error vs reference solve"))
    }

    /// With a box and `H = λ I`, Hessian-free inside `KKTImplicit` equals the exact KKT hypergradient.
    func testHessianFreeInsideKKT() throws {
        let lambda = 0.9
        let problem = BilevelProblem(
            upper: upper, lower: { x, y in 0.5 * lambda * y.squaredNorm() - dot(matmul(self.b, x), y) },
            constraints: .box(lower: -0.1, upper: 0.1, count: 5))
        let exact = try KKTImplicit(solver: .exact).hypergradient(of: problem, at: x0, from: Tensor(zeros: [5]))
        let free = try KKTImplicit(solver: .hessianFree(lambda: lambda)).hypergradient(of: problem, at: x0, from: Tensor(zeros: [5]))
        XCTAssertFalse(exact.innerSolution.scalars.allSatisfy { abs($0) < 0.1 - 1e-9 }, "some bound must be active")
        XCTAssertLessThan(relativeError(free.hypergradient, exact.hypergradient), 1e-12)
    }

    /// N = 6 per-sample losses `fᵢ = ½(aᵢᵀ(y − x) + sᵢ)² + ½γ‖y − x‖²` with the aᵢ in pairs and sᵢ = ±1 in
    /// each pair: `y* = x`, where the full gradient is exactly 0 but `gᵢ = sᵢaᵢ`, so
    /// `∇²ᵧᵧf = γI + (1/N) Σ gᵢgᵢᵀ` exactly. One-shot WoodFisher (single samples, and mini-batches of one
    /// pair's halves) and iterative WoodFisher then equal the dense solve to 1e-10 and give the closed-form
    /// hypergradient `∇ₓF + ∇ᵧF` (f depends on y − x only), while Hessian-free with λ = γ — what the old
    /// one-shot variant built from the full gradient collapsed to — misses by more than 10%.
    func testWoodFisherAtTheLowerSolutionUsesPerSampleCurvature() throws {
        let gamma = 0.3, directions = [[0.9, -0.4, 1.3], [0.2, 1.1, -0.5], [-0.7, 0.3, 0.8]]
        let rows = directions.flatMap { [$0, $0] }, signs = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
        func lowerBatch(_ x: Tensor, _ y: Tensor, _ indices: [Int]) -> Tensor {
            let a = Tensor(shape: [indices.count, 3], scalars: indices.flatMap { rows[$0] })
            let s = Tensor(indices.map { signs[$0] })
            return 0.5 * (matmul(a, y - x) + s).squaredNorm() / Double(indices.count) + 0.5 * gamma * (y - x).squaredNorm()
        }
        let target = Tensor([0.5, -0.2, 0.1])
        let problem = BilevelProblem(
            upper: { x, y in 0.5 * (y - target).squaredNorm() + 0.1 * dot(x, x) },
            lower: { x, y in lowerBatch(x, y, Array(0..<6)) },
            lowerBatch: lowerBatch, lowerSampleCount: 6)
        let x = Tensor([0.4, -0.7, 0.2]), y = x
        XCTAssertLessThan(gradient(at: y) { problem.lower(x, $0) }.squaredNorm().scalar, 1e-28, "y = x is the lower solution")
        let rhs = Tensor([0.3, -1.2, 0.7])
        let dense = AutoDiff.solve(hessian(at: y) { problem.lower(x, $0) }, rhs)
        let closedForm = 0.2 * x + (y - target)
        let freeSolution = try HessianFree(lambda: gamma).solve(LinearSystem(oracle: BilevelOracle(problem), x: x, y: y), rhs: rhs).solution
        XCTAssertGreaterThan(relativeError(freeSolution, dense), 0.1)
        let solvers: [WoodFisher] = [.woodFisher(damping: gamma), .woodFisher(damping: gamma, batchSize: 1, seed: 9), .iterativeWoodFisher(damping: gamma)]
        for solver in solvers {
            let oracle = BilevelOracle(problem)
            let solution = try solver.solve(LinearSystem(oracle: oracle, x: x, y: y), rhs: rhs)
            XCTAssertLessThan(relativeError(solution.solution, dense), 1e-10, solver.name)
            XCTAssertEqual(oracle.counts.gradients, 6)
            XCTAssertEqual(oracle.counts.hvps, 0)
            let result = try Implicit(solver: solver).hypergradient(of: problem, at: x, innerSolution: y)
            XCTAssertLessThan(relativeError(result.hypergradient, closedForm), 1e-10, solver.name)
        }
        // Mini-batches of two samples from different pairs keep some curvature but are no longer exact;
        // one batch of all six is the full gradient, 0 here, i.e. Hessian-free.
        let paired = try WoodFisher.woodFisher(damping: gamma, batchSize: 2, seed: 1).solve(LinearSystem(oracle: BilevelOracle(problem), x: x, y: y), rhs: rhs).solution
        XCTAssertGreaterThan(relativeError(paired, dense), 1e-3)
        let whole = try WoodFisher.woodFisher(damping: gamma, batchSize: 6).solve(LinearSystem(oracle: BilevelOracle(problem), x: x, y: y), rhs: rhs).solution
        XCTAssertLessThan(relativeError(whole, freeSolution), 1e-12)
    }

    /// Iterative WoodFisher on P3's per-sample losses equals the dense `(γI + (1/N) Σ gₖgₖᵀ)⁻¹ b`, for all
    /// samples and for a seeded subset.
    func testIterativeWoodFisherMatchesDenseFisherInverse() throws {
        let cleaning = Fixtures.Cleaning()
        let problem = cleaning.problem(steps: 1), x = cleaning.x0
        let w = Tensor((0..<cleaning.d).map { 0.1 * sin(Double($0)) })
        let rhs = Tensor((0..<cleaning.d).map { cos(0.3 * Double($0)) })
        let gamma = 0.05
        var generator = SeededGenerator(seed: 3)
        for indices in [Array(0..<cleaning.n), generator.sample(60, from: cleaning.n)] {
            let gradients = indices.map { i in gradient(at: w) { cleaning.lowerBatch(x, $0, [i]) } }
            let fisher = gradients.reduce(gamma * Tensor(shape: [cleaning.d, cleaning.d]) { $0 / cleaning.d == $0 % cleaning.d ? 1 : 0 }) { sum, g in
                sum + matmul(g.reshaped(to: [cleaning.d, 1]), g.reshaped(to: [1, cleaning.d])) / Double(indices.count)
            }
            let dense = AutoDiff.solve(fisher, rhs)
            let solver: WoodFisher = .iterativeWoodFisher(damping: gamma, samples: indices.count == cleaning.n ? nil : 60, seed: 3)
            let oracle = BilevelOracle(problem)
            let solution = try solver.solve(LinearSystem(oracle: oracle, x: x, y: w), rhs: rhs)
            XCTAssertLessThan(relativeError(solution.solution, dense), 1e-11, "\(indices.count) samples")
            XCTAssertEqual(oracle.counts.gradients, indices.count)
            XCTAssertEqual(oracle.counts.hvps, 0)
        }
    }

    /// Bad parameters and a missing per-sample loss throw with messages naming them.
    func testInvalidParametersThrow() {
        let problem = BilevelProblem(upper: upper, lower: { x, y in y.squaredNorm() + dot(x, x) })
        let y = Tensor(zeros: [5])
        let cases: [(any HessianInverseSolver, String)] = [
            (HessianFree(lambda: 0), "HessianFree.lambda"), (HessianFree(lambda: .nan), "HessianFree.lambda"),
            (WoodFisher(damping: -1), "WoodFisher.damping"),
            (WoodFisher(damping: 1, curvature: .perSample(count: nil, seed: 0)), "lowerBatch"),
            (WoodFisher(damping: 1), "lowerBatch"),
        ]
        for (solver, message) in cases {
            XCTAssertThrowsError(try solver.solve(LinearSystem(oracle: BilevelOracle(problem), x: x0, y: y), rhs: y)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        let cleaning = Fixtures.Cleaning()
        XCTAssertThrowsError(try WoodFisher.iterativeWoodFisher(damping: 1, samples: 501).solve(
            LinearSystem(oracle: BilevelOracle(cleaning.problem(steps: 1)), x: cleaning.x0, y: Tensor(zeros: [cleaning.d])), rhs: Tensor(zeros: [cleaning.d]))
        ) { error in
            XCTAssertTrue("\(error)".contains("must be in 1...500"), "\(error)")
        }
        XCTAssertThrowsError(try WoodFisher.woodFisher(damping: 1, batchSize: 0).solve(
            LinearSystem(oracle: BilevelOracle(cleaning.problem(steps: 1)), x: cleaning.x0, y: Tensor(zeros: [cleaning.d])), rhs: Tensor(zeros: [cleaning.d]))
        ) { error in
            XCTAssertTrue("\(error)".contains("WoodFisher.miniBatches.size"), "\(error)")
        }
    }
}
