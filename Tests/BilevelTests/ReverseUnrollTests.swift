import XCTest
@testable import Bilevel

/// RAD and TRAD on the P2 unrolled ridge problem (n, d) = (200, 20).
final class ReverseUnrollTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    func testRADMatchesP2ReferenceAndFiniteDifferences() throws {
        let T = 20, problem = ridge.problem(steps: T), y0 = Tensor(zeros: [ridge.d])
        let result = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0)
        let reference = ridge.unrolledHypergradient(ridge.x0, steps: T)
        let fd = try finiteDifferenceGradient(at: ridge.x0, step: 1e-4) { try unrolledObjective(problem, $0, from: y0) }
        let errReference = relativeError(result.hypergradient, reference), errFD = relativeError(result.hypergradient, fd)
        print("RAD T=\(T): vs P2 loop \(errReference), vs FD \(errFD)")
        XCTAssertLessThan(errReference, 1e-10)
        XCTAssertLessThan(errFD, 1e-6)
        XCTAssertEqual(result.diagnostics.counts.vjps, T)
        XCTAssertEqual(result.diagnostics.counts.gradients, 1)
        XCTAssertEqual(result.diagnostics.innerSteps, T)
    }

    func testTRADWithFullTruncationEqualsRAD() throws {
        let T = 15, problem = ridge.problem(steps: T), y0 = Tensor(zeros: [ridge.d])
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
        let trad = try TruncatedReverseUnroll(truncation: T).hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
        let err = relativeError(trad, rad)
        print("TRAD(M=T) vs RAD: \(err)")
        XCTAssertLessThan(err, 1e-14)
    }

    func testTRADTruncatedMatchesP2TruncatedLoop() throws {
        let T = 30, M = 10, problem = ridge.problem(steps: T), y0 = Tensor(zeros: [ridge.d])
        let result = try TruncatedReverseUnroll(truncation: M).hypergradient(of: problem, at: ridge.x0, from: y0)
        let truncated = ridge.unrolledHypergradient(ridge.x0, steps: T, truncation: M)
        let full = ridge.unrolledHypergradient(ridge.x0, steps: T)
        let err = relativeError(result.hypergradient, truncated), gap = relativeError(result.hypergradient, full)
        print("TRAD(M=10, T=30): vs truncated loop \(err), vs full \(gap)")
        XCTAssertLessThan(err, 1e-10)
        XCTAssertGreaterThan(gap, 1e-7)  // the truncation bias, far above the 1e-10 agreement
        XCTAssertEqual(result.diagnostics.counts.vjps, M)
    }

    func testMomentumRADMatchesFiniteDifferences() throws {
        let T = 15, problem = ridge.problem(steps: T, dynamics: .momentum(step: 0.5 * ridge.eta, beta: 0.5))
        let y0 = Tensor(zeros: [ridge.d])
        let rad = try ReverseUnroll().hypergradient(of: problem, at: ridge.x0, from: y0).hypergradient
        let fd = try finiteDifferenceGradient(at: ridge.x0, step: 1e-4) { try unrolledObjective(problem, $0, from: y0) }
        let err = relativeError(rad, fd)
        print("momentum RAD vs FD: \(err)")
        XCTAssertLessThan(err, 1e-6)
    }

    func testStepErrors() {
        let y0 = Tensor(zeros: [ridge.d])
        XCTAssertThrowsError(try ReverseUnroll().hypergradient(of: ridge.problem(steps: 0), at: ridge.x0, from: y0)) {
            guard case BilevelError.invalidSteps = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try TruncatedReverseUnroll(truncation: 11).hypergradient(of: ridge.problem(steps: 10), at: ridge.x0, from: y0)) {
            guard case let BilevelError.invalidSteps(_, value, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(value, 11)
        }
        XCTAssertThrowsError(try TruncatedReverseUnroll(truncation: 0).hypergradient(of: ridge.problem(steps: 10), at: ridge.x0, from: y0))
    }

    func testDivergingInnerLoopNamesTheStep() {
        let problem = ridge.problem(steps: 2000, dynamics: .gradientDescent(step: 100 * ridge.eta))
        XCTAssertThrowsError(try TruncatedReverseUnroll(truncation: 5).hypergradient(of: problem, at: ridge.x0, from: Tensor(ones: [ridge.d]))) {
            guard case let BilevelError.nonFinite(_, step) = $0 else { return XCTFail("\($0)") }
            print("diverging loop: \($0)")
            XCTAssertNotNil(step)
            XCTAssertGreaterThan(step ?? 0, 1)
        }
    }

    func testEmptyAndNonFiniteInputsThrow() {
        let problem = ridge.problem(steps: 3)
        XCTAssertThrowsError(try ReverseUnroll().hypergradient(of: problem, at: Tensor(zeros: [0]), from: Tensor(zeros: [ridge.d]))) {
            guard case BilevelError.emptyTensor = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try ForwardUnroll().hypergradient(of: problem, at: ridge.x0, from: Tensor(zeros: [0]))) {
            guard case BilevelError.emptyTensor = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Implicit(solver: .exact).hypergradient(of: problem, at: ridge.x0, innerSolution: Tensor(zeros: [0]))) {
            guard case BilevelError.emptyTensor = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Implicit(solver: .exact).hypergradient(of: problem, at: ridge.x0, innerSolution: Tensor(repeating: .nan, shape: [ridge.d]))) {
            guard case BilevelError.nonFinite = $0 else { return XCTFail("\($0)") }
        }
    }

    func testStateShapeChangeThrows() {
        let problem = BilevelProblem(
            upper: { _, y in y.sum() }, lower: { x, y in (x * y).sum() },
            dynamics: .custom { s, _ in concatenate([s, s]) }, innerSteps: 3)
        XCTAssertThrowsError(try ReverseUnroll().hypergradient(of: problem, at: Tensor([1]), from: Tensor([1]))) {
            guard case BilevelError.shapeMismatch = $0 else { return XCTFail("\($0)") }
        }
    }
}
