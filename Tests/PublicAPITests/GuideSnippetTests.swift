import Foundation
import XCTest
import AutoDiff

/// Compiles and runs every snippet of Docs/guide.md (copied verbatim; `DocSnippetTests` checks that
/// each block of the page appears here), then checks its numbers.
final class GuideSnippetTests: XCTestCase {
    func testReadmeExample() {
        let x = Tensor([1.0, 2.0, 3.0])
        let f: (Tensor) -> Tensor = { x in (exp(x) * sin(x)).sum() }
        let g = gradient(at: x, of: f)                            // ∇f(x)
        let hv = hvp(at: x, direction: Tensor([1, 0, 0]), of: f)  // ∇²f(x) · e₀
        let (y, t) = jvp(at: x, direction: Tensor([0, 1, 0]), of: f)
        let mixed = gradient(at: x) { x in (x * gradient(at: x) { y in (x * y).sum() }).sum() }
        print(g, hv, y, t, mixed)
        let e = Foundation.exp(1.0), s = Foundation.sin(1.0), c = Foundation.cos(1.0)
        XCTAssertEqual(g.scalars[0], e * (s + c), accuracy: 1e-14)
        XCTAssertEqual(hv.scalars[0], 2 * e * c, accuracy: 1e-13)   // (eˣ sin x)'' = 2eˣ cos x
        XCTAssertEqual(hv.scalars[1], 0)
        XCTAssertEqual(t.scalar, Foundation.exp(2.0) * (Foundation.sin(2.0) + Foundation.cos(2.0)), accuracy: 1e-13)
        // d/dx Σ x·(∂/∂y Σ x·y) = d/dx Σ x² = 2x: the inner gradient sees x as a constant.
        XCTAssertEqual(mixed.scalars, [2, 4, 6])
    }

    func testTensorsSnippet() {
        let x = Tensor([1, 2, 3])                                   // rank 1, shape [3]
        let m = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])  // rank 2, row-major
        let s = Tensor(2.5)                                         // rank 0 (a scalar)
        let y = m * x + s          // broadcasting: the row x is repeated over the rows of m
        let v = matmul(m, x)       // matrix·vector, shape [2]
        print(y.shape, v.scalars)  // [2, 3] [14.0, 32.0]
        XCTAssertEqual(y.scalars, [3.5, 6.5, 11.5, 6.5, 12.5, 20.5])
        XCTAssertEqual(v.scalars, [14, 32])
    }

    func testGradientSnippets() {
        let w = Tensor([0.5, -1.0, 2.0])
        let g = gradient(at: w) { w in (w * w).sum() }           // 2w
        let (loss, gw) = valueWithGradient(at: w) { w in exp(w).sum() }
        let (value, pullback) = vjp(at: w) { w in sin(w) }       // non-scalar output
        let cotangent = pullback(Tensor([1, 0, 0]))              // first row of the Jacobian
        XCTAssertEqual(g.scalars, [1, -2, 4])
        XCTAssertEqual(loss.scalar, w.scalars.map { Foundation.exp($0) }.reduce(0, +), accuracy: 1e-14)
        XCTAssertEqual(gw.scalars, w.scalars.map { Foundation.exp($0) })
        XCTAssertEqual(value.scalars, w.scalars.map { Foundation.sin($0) })
        XCTAssertEqual(cotangent.scalars, [Foundation.cos(0.5), 0, 0])

        let direction = Tensor([1, 0, 0])
        let (fx, tangent) = jvp(at: w, direction: direction) { w in tanh(w).sum() }
        XCTAssertEqual(fx.scalar, w.scalars.map { Foundation.tanh($0) }.reduce(0, +), accuracy: 1e-14)
        XCTAssertEqual(tangent.scalar, 1 - Foundation.pow(Foundation.tanh(0.5), 2), accuracy: 1e-15)
    }

    func testSecondOrderSnippet() {
        let rosenbrock: (Tensor) -> Tensor = { x in
            let head = x[0..<(x.count - 1)], tail = x[1..<x.count]
            return (100 * (tail - head * head) * (tail - head * head) + (1 - head) * (1 - head)).sum()
        }
        let point = Tensor([0.5, 0.8, 1.1]), v = Tensor([1, -1, 0.5])
        let hv = hvp(at: point, direction: v, of: rosenbrock)
        let hvForward = hvp(at: point, direction: v, mode: .forwardOverReverse, of: rosenbrock)
        let h = hessian(at: point, of: rosenbrock)               // dense, shape [3, 3]
        XCTAssertEqual(h.shape, [3, 3])
        let dense = matmul(h, v)
        XCTAssertTrue(hv.isApproximatelyEqual(to: dense, tolerance: 1e-12))
        XCTAssertTrue(hvForward.isApproximatelyEqual(to: dense, tolerance: 1e-12))
        // Analytic entries: h00 = 1200 x0² − 400 x1 + 2, h01 = −400 x0.
        XCTAssertEqual(h.scalars[0], 1200 * 0.25 - 400 * 0.8 + 2, accuracy: 1e-10)
        XCTAssertEqual(h.scalars[1], -200, accuracy: 1e-12)
    }

    func testNestingSnippet() {
        // d/dx [x · d/dy (x + y)] at x = y = 1 is 1 (a confused implementation answers 2).
        let one = Tensor(1.0)
        let d = gradient(at: one) { x in (x * gradient(at: one) { y in x + y }).sum() }
        // A third derivative: f(x) = x⁴, f'''(x) = 24x.
        let third = gradient(at: Tensor(1.5)) { x in gradient(at: x) { x in gradient(at: x) { x in pow(x, 4) } } }
        XCTAssertEqual(d.scalar, 1)
        XCTAssertEqual(third.scalar, 36, accuracy: 1e-12)
    }

    func testGradcheckSnippet() {
        let report = gradcheck(at: Tensor([0.3, -0.7, 1.2])) { x in softplus(x) * sin(x) }
        print(report.maxRelativeError)     // about 1e-10
        assert(report.passes(tolerance: 1e-6))
        XCTAssertLessThan(report.maxRelativeError, 1e-8)
    }

    func testErrorSnippet() {
        do {
            _ = try Shapes.broadcast([2, 3], [4])
        } catch {
            print(error)   // names both shapes and the clashing axis
        }
        XCTAssertThrowsError(try Shapes.broadcast([2, 3], [4])) { error in
            XCTAssertTrue("\(error)".contains("[2, 3]") && "\(error)".contains("[4]"), "\(error)")
        }
    }
}
