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

    /// argmin over a structured y (two leaves of different shapes), at first and second order.
    func testArgminOverABundleAgainstFiniteDifferences() {
        let layer: (Tensor) -> [Tensor] = { x in
            argmin(of: { (x: Tensor, y: [Tensor]) in
                let (a, b) = (y[0], y[1])
                return 0.5 * a.squaredNorm() + 0.25 * (a * a * a * a).sum() - dot(x, a)
                    + 0.5 * (b - a.sum()) * (b - a.sum()) + 0.1 * b * b * b * b
            }, at: x, initial: [Tensor(zeros: [2]), Tensor(0)])
        }
        let x = Tensor([0.6, -0.2])
        let solution = layer(x)
        XCTAssertEqual(solution[0].shape, [2])
        XCTAssertEqual(solution[1].shape, [])
        let first = gradcheck(at: x) { x in concatenate([layer(x)[0], layer(x)[1].reshaped(to: [1])]) }
        let second = gradcheck(at: x) { x in gradient(at: x) { x in let y = layer(x); return sin(y[0]).sum() + y[1] * y[1] } }
        print("argmin over a bundle: first-order max error \(first.maxRelativeError), second-order \(second.maxRelativeError)")
        XCTAssertTrue(first.passes(tolerance: 1e-6), "\(first)")
        XCTAssertTrue(second.passes(tolerance: 1e-6), "\(second)")
    }
}

/// A three-level problem (Betty's multilevel case): x → y*(x) = argmin_y f(x, y) where f contains the
/// solution z*(x, y) = argmin_z ½ zᵀPz − ⟨z, x + y⟩ = P⁻¹(x + y) of a third level, computed by `argmin`:
///
///     f(x, y) = ½‖y − b‖² + ½ c ‖z*(x, y)‖²   ⇒   y*(x) = (I + cP⁻²)⁻¹ (b − cP⁻² x),
///     F(x, y) = ½‖y − t‖² + ½‖x‖²             ⇒   ∇F(x) = x − cP⁻²(I + cP⁻²)⁻¹ (y*(x) − t).
final class ThreeLevelTests: XCTestCase {
    let p = Tensor(shape: [2, 2], scalars: [2, 0.5, 0.5, 1.5])
    let b = Tensor([1, -1]), t = Tensor([0.5, 2]), c = 1.0
    let x0 = Tensor([0.4, -0.3])

    /// z*(x, y) by the implicit layer.
    func bottom(_ x: Tensor, _ y: Tensor) -> Tensor {
        argmin(of: { (xy: [Tensor], z: Tensor) in 0.5 * dot(z, matmul(self.p, z)) - dot(z, xy[0] + xy[1]) },
               at: [x, y], initial: Tensor(zeros: [2]))
    }

    var problem: BilevelProblem {
        BilevelProblem(
            upper: { x, y in 0.5 * (y - self.t).squaredNorm() + 0.5 * x.squaredNorm() },
            lower: { x, y in 0.5 * (y - self.b).squaredNorm() + 0.5 * self.c * self.bottom(x, y).squaredNorm() },
            dynamics: .gradientDescent(step: 0.5), innerSteps: 60)
    }

    /// `∇F(x)` in closed form.
    func closedForm(_ x: Tensor) -> Tensor {
        let pInverse = solve(p, Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]))
        let k = c * matmul(pInverse, pInverse)                      // cP⁻² (symmetric)
        let m = Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]) + k    // I + cP⁻²
        let y = solve(m, b - matmul(k, x))
        return x - matmul(k, solve(m, y - t))
    }

    func testHypergradientThroughALowerLevelThatIsItselfABilevelSolution() throws {
        let expected = closedForm(x0)
        // y*(x) as an implicit layer too: argmin over y of a lower level holding an argmin.
        let nestedLayers = gradient(at: x0) { x in
            let y = argmin(of: { x, y in self.problem.lower(x, y) }, at: x, initial: Tensor(zeros: [2]))
            return self.problem.upper(x, y)
        }
        let implicit = try Implicit(solver: ExactSolve()).hypergradient(of: problem, at: x0, from: Tensor(zeros: [2])).hypergradient
        let rad = try ReverseUnroll().hypergradient(of: problem, at: x0, from: Tensor(zeros: [2])).hypergradient
        // Central differences of x ↦ F(x, y*(x)), y*(x) from the layers' values only.
        let h = 1e-5
        let hyperobjective: (Tensor) -> Double = { x in
            let y = argmin(of: { x, y in self.problem.lower(x, y) }, at: x, initial: Tensor(zeros: [2]))
            return self.problem.upper(x, y).scalar
        }
        let finiteDifference = Tensor(shape: [2]) { i in
            let e = Tensor(shape: [2]) { $0 == i ? h : 0 }
            return (hyperobjective(self.x0 + e) - hyperobjective(self.x0 - e)) / (2 * h)
        }
        func error(_ g: Tensor, _ reference: Tensor) -> Double {
            ((g - reference).squaredNorm().scalar / reference.squaredNorm().scalar).squareRoot()
        }
        print("""
            three-level hypergradient, relative errors vs closed form \(expected.scalars):
              nested implicit layers \(error(nestedLayers, expected))   Implicit(exact) \(error(implicit, expected))   RAD (T = 60) \(error(rad, expected))
              finite differences vs closed form \(error(finiteDifference, expected)), nested layers vs finite differences \(error(nestedLayers, finiteDifference))
            """)
        XCTAssertLessThan(error(finiteDifference, expected), 1e-8)
        XCTAssertLessThan(error(nestedLayers, expected), 1e-10)
        XCTAssertLessThan(error(implicit, expected), 1e-10)
        XCTAssertLessThan(error(rad, expected), 1e-10)
    }
}
