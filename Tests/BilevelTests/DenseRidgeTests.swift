import AutoDiff
import Foundation
import Workloads
import XCTest

/// P1's closed form (`RidgeWorkload.exactHypergradient`, one Cholesky factorisation for both solves)
/// against the two-`choleskySolve` formula it replaced (≤ 1e-12 relative), against central differences
/// of `x ↦ F(w*(x))` with w* from LU (an independent solver), and staged (A, b, C, dv constants) against
/// eager.
final class DenseRidgeTests: XCTestCase {
    private let ridge = RidgeWorkload(n: 200, d: 20)

    private func relativeDifference(_ x: Tensor, _ y: Tensor) -> Double {
        zip(x.scalars, y.scalars).map { abs($0 - $1) }.max()! / y.scalars.map(abs).max()!
    }

    func testClosedFormMatchesTwoSolveFormula() throws {
        let x = ridge.x0, h = ridge.hessian(x)
        let w = try XCTUnwrap(choleskySolve(h, matmul(ridge.b, ridge.a) / Double(ridge.n)))
        let v = try XCTUnwrap(choleskySolve(h, matmul(matmul(ridge.c, w) - ridge.dv, ridge.c) / Double(ridge.m)))
        let relative = relativeDifference(ridge.exactHypergradient(x), -exp(x) * w * v)
        print("P1 closed form vs two choleskySolve: \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-12)
    }

    func testClosedFormMatchesFiniteDifferences() {
        let x = ridge.x0, exact = ridge.exactHypergradient(x), step = 1e-5
        let atb = matmul(ridge.b, ridge.a) / Double(ridge.n)
        func value(_ x: Tensor) -> Double { ridge.upper(x, solve(ridge.hessian(x), atb)).scalar }
        var worst = 0.0
        for j in 0..<ridge.d {
            var plus = x.scalars, minus = x.scalars
            plus[j] += step
            minus[j] -= step
            let numerical = (value(Tensor(plus)) - value(Tensor(minus))) / (2 * step)
            worst = max(worst, abs(numerical - exact.scalars[j]))
        }
        let relative = worst / exact.scalars.map(abs).max()!
        print("P1 closed form vs central differences: \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-6)
    }

    /// The staged closed form: AᵀA/n folded at staging (no [d, d] product left in the program), one
    /// factorisation, and the eager values at x0 and at another point.
    func testStagedClosedFormMatchesEager() {
        let program = stage(shape: [ridge.d]) { self.ridge.exactHypergradient($0) }.optimized()
        var names: [String] = []
        for instruction in program.instructions { if case let .apply(op, _) = instruction.operation { names.append(op.name) } }
        XCTAssertEqual(names.filter { $0 == "cholesky" }.count, 1, "\(names)")
        XCTAssertFalse(program.instructions.contains {
            if case let .apply(op, _) = $0.operation { return op.name == "matmul" && $0.shape == [ridge.d, ridge.d] }
            return false
        }, "AᵀA was not folded: \(names)")
        for x in [ridge.x0, ridge.x0 + 0.7] {
            let relative = relativeDifference(program(x), ridge.exactHypergradient(x))
            XCTAssertLessThanOrEqual(relative, 1e-12)
        }
    }
}
