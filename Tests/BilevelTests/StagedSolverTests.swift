import XCTest
import AutoDiff
@testable import Bilevel
import Workloads

/// Linear solves in staged mode replay the lower HVP specialized to the fixed point `(x, y)`
/// (`LinearSystem.apply`, `Program.specialized(binding:)`): the same solutions as eager mode (≤ 1e-12)
/// with the same counted queries.
final class StagedSolverTests: XCTestCase {
    private let p3 = HyperCleaningWorkload(n: 60, m: 20, d: 10)

    private func problems() -> (eager: BilevelProblem, staged: BilevelProblem) {
        let eager = p3.problem(steps: 10, step: 15)
        var staged = eager
        staged.derivatives = .staged
        return (eager, staged)
    }

    private func relativeError(_ actual: Tensor, _ expected: Tensor) -> Double {
        let difference = zip(actual.scalars, expected.scalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        return difference / expected.scalars.map { $0 * $0 }.reduce(0, +).squareRoot()
    }

    /// CG and the Neumann series give the same solution and hypergradient staged and eager, and count the
    /// same HVPs (one per product, plus the Neumann residual's).
    func testSolversMatchEagerWithEqualCounts() throws {
        try check(ConjugateGradient(maxIterations: 8, tolerance: 0))
        try check(ConjugateGradient(maxIterations: 50, tolerance: 1e-12))
        try check(NeumannSeries(terms: 30, step: 15))
    }

    private func check<Solver: HessianInverseSolver>(_ solver: Solver) throws {
        let (eager, staged) = problems(), x = p3.x0, wStar = p3.solution(x)
        let eagerResult = try Implicit(solver: solver).hypergradient(of: eager, at: x, innerSolution: wStar)
        let stagedResult = try Implicit(solver: solver).hypergradient(of: staged, at: x, innerSolution: wStar)
        XCTAssertLessThanOrEqual(relativeError(stagedResult.hypergradient, eagerResult.hypergradient), 1e-12, solver.name)
        XCTAssertEqual(stagedResult.diagnostics.counts, eagerResult.diagnostics.counts, solver.name)
        XCTAssertGreaterThan(stagedResult.diagnostics.counts.hvps, 0)
        XCTAssertEqual(stagedResult.diagnostics.solverIterations, eagerResult.diagnostics.solverIterations, solver.name)
        let b = gradient(at: wStar) { p3.upper(x, $0) }
        let stagedOracle = BilevelOracle(staged), eagerOracle = BilevelOracle(eager)
        let stagedSolution = try solver.solve(LinearSystem(oracle: stagedOracle, x: x, y: wStar), rhs: b)
        let eagerSolution = try solver.solve(LinearSystem(oracle: eagerOracle, x: x, y: wStar), rhs: b)
        XCTAssertLessThanOrEqual(relativeError(stagedSolution.solution, eagerSolution.solution), 1e-12, solver.name)
        XCTAssertEqual(stagedOracle.counts, eagerOracle.counts, solver.name)
        XCTAssertEqual(stagedSolution.iterations, eagerSolution.iterations, solver.name)
    }

    /// The specialized product is the staged HVP at the system's point: `apply` at two points of one
    /// oracle gives each point's Hessian, not the first one's (a system specializes to its own `(x, y)`).
    func testEachSystemSpecializesToItsOwnPoint() {
        let (_, staged) = problems(), oracle = BilevelOracle(staged), x = p3.x0
        let w1 = p3.solution(x), w2 = w1 * 0.5, v = Tensor(shape: [p3.d]) { Double($0 + 1) }
        for w in [w1, w2] {
            let system = LinearSystem(oracle: oracle, x: x, y: w)
            _ = system.apply(v)
            let expected = hvp(at: w, direction: v) { p3.lower(x, $0) }
            XCTAssertLessThanOrEqual(relativeError(system.apply(v), expected), 1e-12)
        }
        XCTAssertEqual(oracle.counts.hvps, 4)
    }

    /// A specialization is used only when the reads it saves per product repay copying its constants
    /// within `FixedPointHVP.paybackProducts` products: P3's HVP (σ(x), the labels and X w folded) is
    /// specialized, P1's `G v + exp(x) ⊙ v` (only exp(x) folds, saving at most d reads; G is 50 × 50 here) is not.
    func testSpecializesOnlyWhenItPays() throws {
        let full = HyperCleaningWorkload()
        var cleaning = full.problem(steps: 10, step: 15)
        cleaning.derivatives = .staged
        let cleaningOracle = BilevelOracle(cleaning), w = full.solution(full.x0)
        let program = try XCTUnwrap(cleaningOracle.staged(.lowerHVP, [full.x0.shape, w.shape]))
        let specialized = try XCTUnwrap(FixedPointHVP().program(cleaningOracle, full.x0, w))
        // X w (n d reads) and the σ(x) steps fold; X stays (twice: once per product with it).
        let saved = program.elementsRead - specialized.elementsRead
        XCTAssertGreaterThan(saved, full.n * full.d)
        XCTAssertGreaterThanOrEqual(FixedPointHVP.paybackProducts * saved, specialized.constantElements)
        let ridge = RidgeWorkload(n: 200, d: 50)
        var ridgeProblem = ridge.problem(steps: 1)
        ridgeProblem.derivatives = .staged
        let ridgeOracle = BilevelOracle(ridgeProblem), wRidge = ridge.solution(ridge.x0)
        let ridgeProgram = try XCTUnwrap(ridgeOracle.staged(.lowerHVP, [ridge.x0.shape, wRidge.shape]))
        let ridgeSpecialized = ridgeProgram.specialized(binding: [0: ridge.x0, 1: wRidge])
        let ridgeSaved = ridgeProgram.elementsRead - ridgeSpecialized.elementsRead
        XCTAssertLessThanOrEqual(ridgeSaved, ridge.d)  // at most exp(x)'s pass (0 once fusion reads x in the tree)
        XCTAssertGreaterThan(ridgeSpecialized.constantElements, ridge.d * ridge.d)
        XCTAssertLessThan(FixedPointHVP.paybackProducts * ridgeSaved, ridgeSpecialized.constantElements)
        XCTAssertNil(FixedPointHVP().program(ridgeOracle, ridge.x0, wRidge))
        let v = Tensor(shape: [ridge.d]) { Double($0 % 7) - 3 }
        let system = LinearSystem(oracle: ridgeOracle, x: ridge.x0, y: wRidge)
        XCTAssertLessThanOrEqual(relativeError(system.apply(v), hvp(at: wRidge, direction: v) { ridge.lower(ridge.x0, $0) }), 1e-12)
    }
}
