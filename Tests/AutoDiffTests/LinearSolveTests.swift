import XCTest
@testable import AutoDiff

/// `solve` and `choleskySolve`: values against residuals, first and second derivatives against central
/// finite differences (written inline: a small symmetric difference of a scalar function).
final class LinearSolveTests: XCTestCase {
    let a = Tensor(shape: [4, 4]) { k in Foundation.sin(Double(k) * 0.7 + 0.3) + (k % 5 == 0 ? 3 : 0) }
    let b = Tensor((0..<4).map { Foundation.cos(Double($0) + 0.2) })
    let rhs = Tensor(shape: [4, 2]) { Foundation.cos(0.4 * Double($0) + 1) }

    /// Central differences of a scalar `f` at `x` with step `h`.
    private func numericalGradient(at x: Tensor, h: Double = 1e-6, _ f: (Tensor) -> Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: (0..<x.count).map { i in
            var plus = x.scalars, minus = x.scalars
            plus[i] += h
            minus[i] -= h
            return (f(Tensor(shape: x.shape, scalars: plus)).scalar - f(Tensor(shape: x.shape, scalars: minus)).scalar) / (2 * h)
        })
    }

    private func maxError(_ u: Tensor, _ v: Tensor) -> Double { zip(u.scalars, v.scalars).map { abs($0 - $1) }.max()! }

    func testSolveValueHasSmallResidual() {
        XCTAssertLessThan(maxError(matmul(a, solve(a, b)), b), 1e-13)
        XCTAssertLessThan(maxError(matmul(a, solve(a, rhs)), rhs), 1e-13)
        // A pivot is needed: a zero leading entry.
        let p = Tensor(shape: [2, 2], scalars: [0, 1, 2, 3])
        XCTAssertEqual(solve(p, Tensor([1, 8])).scalars, [2.5, 1])
    }

    func testSolveGradientsMatchFiniteDifferences() {
        let weights = Tensor(shape: [4, 2]) { Double($0 % 3) - 0.5 }
        let fA: (Tensor) -> Tensor = { a in (solve(a, self.rhs) * weights).sum() }
        let fB: (Tensor) -> Tensor = { b in (solve(self.a, b) * Tensor([1, -2, 0.5, 3])).sum() }
        let errA = maxError(gradient(at: a, of: fA), numericalGradient(at: a, fA))
        let errB = maxError(gradient(at: b, of: fB), numericalGradient(at: b, fB))
        print("solve VJP vs FD: A \(errA), b \(errB)")
        XCTAssertLessThan(errA, 1e-8)
        XCTAssertLessThan(errB, 1e-8)
        // JVP: directional derivative in A and b at once.
        let da = Tensor(shape: [4, 4]) { Foundation.cos(Double($0)) }, db = Tensor([0.3, -0.1, 0.2, 0.5])
        let (_, tangent) = jvp(at: a, b, directions: (da, db)) { a, b in solve(a, b) }
        let h = 1e-6
        let numerical = (solve(a + h * da, b + h * db) - solve(a - h * da, b - h * db)) / (2 * h)
        XCTAssertLessThan(maxError(tangent, numerical), 1e-8)
    }

    func testSolveSecondDerivativeMatchesFiniteDifferences() {
        // The rules are written with `solve`, so the gradient is differentiable again: HVP vs FD of the gradient.
        let f: (Tensor) -> Tensor = { b in solve(self.a, b * b).squaredNorm() }
        let v = Tensor([1, 0.5, -0.3, 0.2]), h = 1e-5
        let exact = hvp(at: b, direction: v, mode: .reverseOverReverse, of: f)
        let numerical = (gradient(at: b + h * v, of: f) - gradient(at: b - h * v, of: f)) / (2 * h)
        print("solve HVP vs FD: \(maxError(exact, numerical))")
        XCTAssertLessThan(maxError(exact, numerical), 1e-7)
        let g: (Tensor) -> Tensor = { a in solve(a, self.b).squaredNorm() }
        let direction = Tensor(shape: [4, 4]) { 0.1 * Double($0 % 4) }
        let exactA = hvp(at: a, direction: direction, mode: .forwardOverReverse, of: g)
        let numericalA = (gradient(at: a + h * direction, of: g) - gradient(at: a - h * direction, of: g)) / (2 * h)
        XCTAssertLessThan(maxError(exactA, numericalA), 1e-7)
    }

    func testCholeskySolveMatchesSolveAndItsDerivatives() throws {
        // A = M Mᵀ + I is symmetric positive definite for every M: differentiate through M.
        let m = Tensor(shape: [3, 3]) { Foundation.sin(Double($0) + 0.5) }, c = Tensor([1, -1, 2])
        let spd: (Tensor) -> Tensor = { m in matmul(m, m, transposeA: false, transposeB: true) + Tensor(shape: [3, 3]) { $0 % 4 == 0 ? 1 : 0 } }
        let viaCholesky = try XCTUnwrap(choleskySolve(spd(m), c))
        XCTAssertLessThan(maxError(viaCholesky, solve(spd(m), c)), 1e-13)
        let f: (Tensor) -> Tensor = { m in choleskySolve(spd(m), c)!.squaredNorm() }
        let err = maxError(gradient(at: m, of: f), numericalGradient(at: m, f))
        print("choleskySolve VJP vs FD: \(err)")
        XCTAssertLessThan(err, 1e-8)
        XCTAssertNil(choleskySolve(Tensor(shape: [2, 2], scalars: [1, 0, 0, -1]), Tensor([1, 1])))
    }

    /// Orders that exercise the SIMD factorisations' tails (not multiples of 4 or 8), pivoting, and several
    /// right-hand sides solved column by column.
    func testLargerSystemsHaveSmallResidualsForEveryColumn() throws {
        for n in [5, 37, 130] {
            let general = Tensor(shape: [n, n]) { k in Foundation.sin(0.7 * Double(k) + 0.3) + (k % (n + 1) == 0 ? 3 : 0) }
            let m = Tensor(shape: [n, n]) { k in Foundation.cos(0.21 * Double(k) + 0.4) }
            let spd = matmul(m, m, transposeA: true, transposeB: false) + Tensor(shape: [n, n]) { $0 % (n + 1) == 0 ? 1 : 0 }
            let columns = Tensor(shape: [n, 3]) { Foundation.sin(0.5 * Double($0)) }
            let vector = Tensor(shape: [n]) { Foundation.cos(0.9 * Double($0)) }
            for rhs in [columns, vector] {
                let lu = solve(general, rhs), cholesky = try XCTUnwrap(choleskySolve(spd, rhs))
                XCTAssertEqual(lu.shape, rhs.shape)
                XCTAssertLessThan(maxError(matmul(general, lu), rhs), 1e-10, "LU, n = \(n), rhs \(rhs.shape)")
                XCTAssertLessThan(maxError(matmul(spd, cholesky), rhs), 1e-10, "Cholesky, n = \(n), rhs \(rhs.shape)")
                XCTAssertLessThan(maxError(solve(spd, rhs), cholesky), 1e-10, "LU vs Cholesky, n = \(n)")
            }
        }
    }
}
