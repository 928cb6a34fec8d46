import XCTest
@testable import Bilevel

/// Implicit differentiation on P1 (closed form) and P3 (hyper-cleaning), with each solver.
final class ImplicitTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    func testConjugateGradientConvergesToClosedForm() throws {
        let exact = ridge.exactHypergradient(ridge.x0), w = ridge.solution(ridge.x0)
        let method = Implicit(solver: .conjugateGradient(maxIterations: 200, tolerance: 1e-12))
        let result = try method.hypergradient(of: ridge.problem(steps: 1), at: ridge.x0, innerSolution: w)
        let err = relativeError(result.hypergradient, exact)
        print("implicit-cg (given w*) vs closed form: \(err), iterations \(result.diagnostics.solverIterations!), residual \(result.diagnostics.residual!)")
        XCTAssertLessThan(err, 1e-6)
        XCTAssertTrue(result.diagnostics.converged)
        XCTAssertLessThanOrEqual(result.diagnostics.residual!, 1e-12)
        XCTAssertEqual(result.diagnostics.counts.hvps, result.diagnostics.solverIterations)
        XCTAssertEqual(result.diagnostics.counts.mixedProducts, 1)
        XCTAssertEqual(result.diagnostics.counts.gradients, 1)
    }

    func testInnerLoopToleranceStopsEarlyAndMatchesClosedForm() throws {
        let exact = ridge.exactHypergradient(ridge.x0)
        let method = Implicit(solver: .conjugateGradient(maxIterations: 200, tolerance: 1e-12), innerTolerance: 1e-11, maxInnerSteps: 200_000)
        let result = try method.hypergradient(of: ridge.problem(steps: 1), at: ridge.x0, from: Tensor(zeros: [ridge.d]))
        let err = relativeError(result.hypergradient, exact)
        print("implicit-cg after inner GD to ‖∇f‖ ≤ 1e-11 (\(result.diagnostics.innerSteps) steps) vs closed form: \(err)")
        XCTAssertLessThan(err, 1e-6)
        XCTAssertTrue(result.diagnostics.converged)
        XCTAssertLessThan(result.diagnostics.innerSteps, 200_000)
        XCTAssertEqual(result.diagnostics.counts.gradients, result.diagnostics.innerSteps + 1)
    }

    func testConjugateGradientHittingTheCapIsReportedAndStrictThrows() throws {
        let w = ridge.solution(ridge.x0), problem = ridge.problem(steps: 1)
        let loose = try Implicit(solver: .conjugateGradient(maxIterations: 2, tolerance: 1e-12)).hypergradient(of: problem, at: ridge.x0, innerSolution: w)
        XCTAssertFalse(loose.diagnostics.converged)
        XCTAssertEqual(loose.diagnostics.solverIterations, 2)
        XCTAssertGreaterThan(loose.diagnostics.residual!, 1e-12)
        XCTAssertThrowsError(try Implicit(solver: .conjugateGradient(maxIterations: 2, tolerance: 1e-12, strict: true)).hypergradient(of: problem, at: ridge.x0, innerSolution: w)) {
            guard case let BilevelError.didNotConverge(_, iterations, residual, tolerance) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(iterations, 2)
            XCTAssertGreaterThan(residual, tolerance)
        }
        XCTAssertThrowsError(try Implicit(solver: .conjugateGradient(maxIterations: 2), strict: true).hypergradient(of: problem, at: ridge.x0, innerSolution: w)) {
            guard case BilevelError.didNotConverge = $0 else { return XCTFail("\($0)") }
        }
    }

    func testStrictInnerToleranceThrows() {
        let method = Implicit(solver: .conjugateGradient(), innerTolerance: 1e-12, maxInnerSteps: 3, strict: true)
        XCTAssertThrowsError(try method.hypergradient(of: ridge.problem(steps: 1), at: ridge.x0, from: Tensor(zeros: [ridge.d]))) {
            guard case let BilevelError.didNotConverge(_, iterations, _, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(iterations, 3)
        }
    }

    func testRADWithLargeTApproachesImplicit() throws {
        let exact = ridge.exactHypergradient(ridge.x0), y0 = Tensor(zeros: [ridge.d])
        let steps = [2, 4, 8, 40]
        let errors = try steps.map { T in
            relativeError(try ReverseUnroll().hypergradient(of: ridge.problem(steps: T), at: ridge.x0, from: y0).hypergradient, exact)
        }
        print("RAD vs closed form for T = \(steps): \(errors)")
        XCTAssertLessThan(errors[1], errors[0])
        XCTAssertLessThan(errors[2], errors[1])
        XCTAssertLessThan(errors[3], 1e-10)
    }
}
