import XCTest
@testable import AutoDiff
import Foundation

final class HVPTests: XCTestCase {
    func rosenbrock(_ x: Tensor) -> Tensor {
        let n = x.count
        let head = x[0..<(n - 1)], tail = x[1..<n]
        let a = tail - head * head
        return (100 * a * a + (1 - head) * (1 - head)).sum()
    }

    /// The analytic Hessian of Rosenbrock: tridiagonal.
    func rosenbrockHessian(_ x: [Double]) -> [[Double]] {
        let n = x.count
        var h = Array(repeating: Array(repeating: 0.0, count: n), count: n)
        for i in 0..<(n - 1) {
            h[i][i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2
            h[i + 1][i + 1] += 200
            h[i][i + 1] += -400 * x[i]
            h[i + 1][i] += -400 * x[i]
        }
        return h
    }

    func testRosenbrockHVPBothModesMatchAnalyticHessian() {
        let n = 7
        let xs = (0..<n).map { 0.5 + 0.4 * Foundation.sin(0.1 * Double($0 + 1)) }
        let vs = (0..<n).map { Foundation.cos(0.3 * Double($0 + 1)) }
        let h = rosenbrockHessian(xs)
        let expected = h.map { row in zip(row, vs).map(*).reduce(0, +) }
        for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
            let hv = hvp(at: Tensor(xs), direction: Tensor(vs), mode: mode, of: rosenbrock)
            for i in 0..<n { XCTAssertEqual(hv.scalars[i], expected[i], accuracy: 1e-10 * max(1, abs(expected[i])), "\(mode) [\(i)]") }
        }
        let full = hessian(at: Tensor(xs), of: rosenbrock)
        XCTAssertEqual(full.shape, [n, n])
        for i in 0..<n { for j in 0..<n { XCTAssertEqual(full.scalars[i * n + j], h[i][j], accuracy: 1e-10 * max(1, abs(h[i][j]))) } }
    }

    /// f(x) = ½ xᵀ Q x + bᵀ x with Q symmetric: ∇²f · v = Q v.
    func testQuadraticFormHVP() {
        let q = Tensor(shape: [3, 3], scalars: [4, 1, -2, 1, 3, 0.5, -2, 0.5, 5])
        let b = Tensor([1, -1, 2])
        let f: (Tensor) -> Tensor = { x in 0.5 * dot(x, matmul(q, x)) + dot(b, x) }
        let v = Tensor([0.3, -1.2, 2.0])
        let expected = matmul(q, v)
        for mode in [HVPMode.reverseOverReverse, .forwardOverReverse] {
            XCTAssertTrue(hvp(at: Tensor([0.1, 0.2, 0.3]), direction: v, mode: mode, of: f).isApproximatelyEqual(to: expected, tolerance: 1e-13))
        }
    }

    /// f(x, y) = Σ sin(x) y²: ∇²xy f · v = 2 cos(x) y v, ∇²yy f · v = 2 sin(x) v.
    func testMixedProducts() {
        let x = Tensor([0.3, -0.7]), y = Tensor([1.5, 2.0]), v = Tensor([0.2, -0.4])
        let f: (Tensor, Tensor) -> Tensor = { x, y in (sin(x) * y * y).sum() }
        let (hxy, hyy) = hvp(at: x, y, directions: (Tensor(zeros: [2]), v), of: f)
        let expectedXY = 2 * cos(x) * y * v, expectedYY = 2 * sin(x) * v
        XCTAssertTrue(hxy.isApproximatelyEqual(to: expectedXY, tolerance: 1e-14))
        XCTAssertTrue(hyy.isApproximatelyEqual(to: expectedYY, tolerance: 1e-14))
        XCTAssertTrue(mixedHVP(at: x, y, direction: v, of: f).isApproximatelyEqual(to: expectedXY, tolerance: 1e-14))
        let (fxy, fyy) = hvp(at: x, y, directions: (Tensor(zeros: [2]), v), mode: .forwardOverReverse, of: f)
        XCTAssertTrue(fxy.isApproximatelyEqual(to: expectedXY, tolerance: 1e-14))
        XCTAssertTrue(fyy.isApproximatelyEqual(to: expectedYY, tolerance: 1e-14))
    }
}
