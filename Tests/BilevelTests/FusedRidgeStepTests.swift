import XCTest
@testable import Bilevel

/// P2's inner step through the fused normal product (`RidgeWorkload.fusedGradientDescent`) against the
/// reference loops of the workload and against the step differentiated through `lower`.
final class FusedRidgeStepTests: XCTestCase {
    let ridge = Fixtures.Ridge()

    func testFusedStepGivesTheP2HypergradientsAndIterates() throws {
        let T = 20, y0 = Tensor(zeros: [ridge.d])
        let fused = ridge.problem(steps: T, dynamics: ridge.fusedGradientDescent), plain = ridge.problem(steps: T)
        let rad = try ReverseUnroll().hypergradient(of: fused, at: ridge.x0, from: y0).hypergradient
        XCTAssertLessThan(relativeError(rad, ridge.unrolledHypergradient(ridge.x0, steps: T)), 1e-10)
        let trad = try TruncatedReverseUnroll(truncation: 5).hypergradient(of: fused, at: ridge.x0, from: y0).hypergradient
        XCTAssertLessThan(relativeError(trad, ridge.unrolledHypergradient(ridge.x0, steps: T, truncation: 5)), 1e-10)
        let fad = try ForwardUnroll().hypergradient(of: fused, at: ridge.x0, from: y0).hypergradient
        XCTAssertLessThan(relativeError(fad, rad), 1e-10)
        let fusedFinal = try BilevelOracle(fused).unroll(from: y0, ridge.x0, steps: T, like: y0).final
        let plainFinal = try BilevelOracle(plain).unroll(from: y0, ridge.x0, steps: T, like: y0).final
        XCTAssertLessThan(relativeError(fusedFinal, plainFinal), 1e-12)
    }
}
