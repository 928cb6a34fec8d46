import Foundation
import XCTest
import AutoDiff
import Bilevel

// Compiled twins of the snippets of README.md and of the "Structured parameters", "Implicit layers" and
// "x-dependent starts" sections of Docs/guide.md and Docs/bilevel.md. This target imports the products
// as a user does (no `@testable`), so the documentation only uses public API; `DocSnippetTests` checks
// each block appears here verbatim.

struct Dense: TensorBundle {
    var weight: Tensor
    var bias: Tensor

    mutating func visitTensors(_ visit: (inout Tensor) -> Void) {
        visit(&weight)
        visit(&bias)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { matmul(x, weight) + bias }
}

struct Penalties: TensorBundle {
    var logDecay: Tensor
    var logBiasDecay: Tensor

    mutating func visitTensors(_ visit: (inout Tensor) -> Void) {
        visit(&logDecay)
        visit(&logBiasDecay)
    }
}

final class PublicAPISnippetTests: XCTestCase {
    /// Central differences of a scalar function of a vector.
    func centralDifferences(at x: Tensor, _ f: (Tensor) throws -> Double) rethrows -> Tensor {
        let h = 1e-5
        return try Tensor(shape: x.shape, scalars: (0..<x.count).map { i in
            let e = Tensor(shape: x.shape) { $0 == i ? h : 0 }
            return (try f(x + e) - f(x - e)) / (2 * h)
        })
    }

    func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        ((a - b).squaredNorm().scalar / b.squaredNorm().scalar).squareRoot()
    }

    func testReadmeBilevelExample() throws {
        // Learn one ridge penalty per weight: the lower level fits w on (a, b), the upper level scores it on (c, d).
        let a = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, 1, 1, 1, -1]), b = Tensor([1, 2, 3, 0])
        let c = Tensor(shape: [2, 2], scalars: [1, 1, 2, -1]), d = Tensor([2.5, 0.5])
        let problem = BilevelProblem(
            upper: { x, w in 0.5 * (matmul(c, w) - d).squaredNorm() },
            lower: { x, w in 0.5 * (matmul(a, w) - b).squaredNorm() + 0.5 * (exp(x) * w * w).sum() },
            dynamics: .gradientDescent(step: 0.1), innerSteps: 200)
        let x0 = Tensor([0.0, 0.0]), w0 = Tensor(zeros: [2])
        let rad = try ReverseUnroll().hypergradient(of: problem, at: x0, from: w0)                 // unrolled
        let cg = try Implicit(solver: .conjugateGradient()).hypergradient(of: problem, at: x0, from: w0)  // implicit
        print(rad.hypergradient, cg.hypergradient, cg.diagnostics)
        let run = try minimize(problem, method: Implicit(solver: .conjugateGradient()), from: x0, y0: w0,
                               optimizer: .adam(step: 0.05), steps: 100)
        print(run.x, run.upperValues.last!)

        // Checks: the closed form w*(x) = (AᵀA + diag eˣ)⁻¹ Aᵀb differenced centrally.
        let hyperobjective: (Tensor) -> Double = { x in
            let h = matmul(a, a, transposeA: true, transposeB: false) + Tensor(shape: [2, 2], scalars: [exp(x).scalars[0], 0, 0, exp(x).scalars[1]])
            let w = solve(h, matmul(b.reshaped(to: [1, 4]), a).reshaped(to: [2]))
            return problem.upper(x, w).scalar
        }
        let reference = centralDifferences(at: x0, hyperobjective)
        XCTAssertLessThan(relativeError(rad.hypergradient, reference), 1e-8)
        XCTAssertLessThan(relativeError(cg.hypergradient, reference), 1e-8)
        XCTAssertLessThan(run.upperValues.last!, 0.5 * run.upperValues.first!)
    }

    func testGuideStructuredParameters() {
        let layers = [
            Dense(weight: Tensor(shape: [2, 3], scalars: [0.1, -0.2, 0.3, 0.4, 0.5, -0.6]), bias: Tensor(zeros: [3])),
            Dense(weight: Tensor(shape: [3, 1], scalars: [0.7, -0.8, 0.9]), bias: Tensor(zeros: [1])),
        ]
        let inputs = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let loss: ([Dense]) -> Tensor = { layers in layers[1](tanh(layers[0](inputs))).squaredNorm() }
        let g = gradient(at: layers, of: loss)              // a [Dense]: g[0].weight is ∂loss/∂W₀, shape [2, 3]
        let hv = hvp(at: layers, direction: g, of: loss)    // ∇²loss · g, a [Dense] too
        let updated = layers.zipTensors(g) { w, dw in w - 0.01 * dw }
        let flat = layers.flattened                         // [vec W₀, vec b₀, vec W₁, vec b₁], 13 scalars
        print(g[0].weight, hv[1].bias, loss(updated), layers.unflattening(flat)[1].weight)

        let flatLoss: (Tensor) -> Tensor = { loss(layers.unflattening($0)) }
        XCTAssertEqual(g[0].weight.shape, [2, 3])
        XCTAssertTrue(g.flattened.isApproximatelyEqual(to: centralDifferences(at: flat) { flatLoss($0).scalar }, tolerance: 1e-8))
        XCTAssertTrue(hv.flattened.isApproximatelyEqual(to: hvp(at: flat, direction: g.flattened, of: flatLoss), tolerance: 1e-12))
        XCTAssertLessThan(loss(updated).scalar, loss(layers).scalar)
    }

    func testGuideImplicitLayers() {
        // y*(x) = argmin_y ½‖y‖² + ¼ Σ y⁴ − ⟨x, y⟩ inside a model: solved by Newton, differentiated by the
        // implicit function theorem (here ∂y*/∂x = diag 1 / (1 + 3y*²)).
        let x = Tensor([0.5, -1.0])
        let layer: (Tensor) -> Tensor = { x in
            argmin(of: { x, y in 0.5 * y.squaredNorm() + 0.25 * (y * y * y * y).sum() - dot(x, y) },
                   at: x, initial: Tensor(zeros: [2]), solver: ConjugateGradient(tolerance: 1e-13))
        }
        let lossGradient = gradient(at: x) { x in layer(x).squaredNorm() }                        // first order
        let curvature = hvp(at: x, direction: Tensor([1, 0])) { x in layer(x).squaredNorm() }     // second order
        let equilibrium = fixedPoint(of: { x, y in 0.5 * tanh(y + x) }, at: x, initial: Tensor(zeros: [2]))
        let solution = root(of: { x, y in y * y * y + y - x }, at: x, initial: Tensor(zeros: [2]))
        print(lossGradient, curvature, equilibrium, solution)

        let y = layer(x)
        XCTAssertTrue(solution.isApproximatelyEqual(to: y, tolerance: 1e-12))
        let expected = 2 * y / (1 + 3 * y * y)
        XCTAssertTrue(lossGradient.isApproximatelyEqual(to: expected, tolerance: 1e-10))
        let secondDifference = (gradient(at: x + Tensor([1e-5, 0])) { x in layer(x).squaredNorm() }
            - gradient(at: x - Tensor([1e-5, 0])) { x in layer(x).squaredNorm() }) / 2e-5
        XCTAssertTrue(curvature.isApproximatelyEqual(to: secondDifference, tolerance: 1e-7))
        XCTAssertTrue(equilibrium.isApproximatelyEqual(to: 0.5 * tanh(equilibrium + x), tolerance: 1e-11))
    }

    func testBilevelStructuredParameters() throws {
        let inputs = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, 1, 1, -1, 0.5])
        let targets = Tensor(shape: [4, 1], scalars: [0.3, -0.1, 0.4, -0.5])
        let validation = Tensor(shape: [4, 1], scalars: [0.2, 0, 0.5, -0.4])
        let model: ([Dense]) -> Tensor = { layers in layers[1](tanh(layers[0](inputs))) }
        let problem = StructuredBilevelProblem<Penalties, [Dense]>(
            upper: { _, layers in (model(layers) - validation).squaredNorm() },
            lower: { penalties, layers in
                (model(layers) - targets).squaredNorm()
                    + (exp(penalties.logDecay) * (layers[0].weight.squaredNorm() + layers[1].weight.squaredNorm())).sum()
                    + (exp(penalties.logBiasDecay) * (layers[0].bias.squaredNorm() + layers[1].bias.squaredNorm())).sum()
            },
            dynamics: .gradientDescent(step: 0.1), innerSteps: 20)
        let penalties = Penalties(logDecay: Tensor(-2.0), logBiasDecay: Tensor(-3.0))
        let layers = [
            Dense(weight: Tensor(shape: [2, 3], scalars: [0.1, -0.2, 0.3, 0.4, 0.5, -0.6]), bias: Tensor(zeros: [3])),
            Dense(weight: Tensor(shape: [3, 1], scalars: [0.7, -0.8, 0.9]), bias: Tensor(zeros: [1])),
        ]
        let result = try ReverseUnroll().hypergradient(of: problem, at: penalties, from: layers)
        print(result.hypergradient.logDecay, result.hypergradient.logBiasDecay, result.innerSolution[0].weight)
        let run = try minimize(problem, method: ReverseUnroll(), from: penalties, y0: layers,
                               optimizer: .adam(step: 0.1), steps: 20)
        print(run.x.logDecay, run.record.upperValues.last!)

        let flat = problem.flat(like: penalties, layers)
        let reference = centralDifferences(at: penalties.flattened) { x in
            var y = layers.flattened
            for _ in 0..<20 { y = y - 0.1 * gradient(at: y) { y in flat.lower(x, y) } }
            return flat.upper(x, y).scalar
        }
        XCTAssertLessThan(relativeError(result.hypergradient.flattened, reference), 1e-7)
        XCTAssertLessThan(run.record.upperValues.last!, run.record.upperValues.first!)
    }

    func testBilevelInitializationDependsOnX() throws {
        // MAML in its own form: adapt θ' from θ on the support loss, score θ' on the query loss.
        let support = Tensor([1.0, 2.0]), query = Tensor([1.5, 1.0])
        let problem = BilevelProblem(
            upper: { theta, adapted in (adapted - query).squaredNorm() },
            lower: { theta, adapted in (adapted * adapted * support).sum() - adapted.sum() },
            dynamics: .gradientDescent(step: 0.1), innerSteps: 3,
            initialization: { theta in theta })        // y0 = θ: the start moves with θ
        let theta = Tensor([0.2, -0.4])
        let maml = try ReverseUnroll().hypergradient(of: problem, at: theta, from: theta).hypergradient
        let firstOrder = try FirstOrderUnroll().hypergradient(of: problem, at: theta, from: theta).hypergradient
        print(maml, firstOrder)

        // Each step multiplies θ' − (2s)⁻¹ by (1 − 0.2 s): the exact meta-gradient is 2 (1 − 0.2 s)³ (θ'_3 − q).
        let adapted = try BilevelOracle(problem).unroll(from: theta, theta, steps: 3, like: theta).final
        let factor = (1 - 0.2 * support) * (1 - 0.2 * support) * (1 - 0.2 * support)
        XCTAssertTrue(maml.isApproximatelyEqual(to: 2 * factor * (adapted - query), tolerance: 1e-12))
        XCTAssertTrue(firstOrder.isApproximatelyEqual(to: 2 * (adapted - query), tolerance: 1e-12))
    }

    func testBilevelImplicitLayerInTheLowerLevel() throws {
        // The lower level holds an implicit layer z*(x, y) = argmin_z ½ zᵀPz − ⟨z, x + y⟩ = P⁻¹(x + y):
        // a three-level problem, differentiated through all three levels by the implicit methods.
        let p = Tensor(shape: [2, 2], scalars: [2, 0.5, 0.5, 1.5])
        let inner: (Tensor, Tensor) -> Tensor = { x, y in
            argmin(of: { (xy: [Tensor], z: Tensor) in 0.5 * dot(z, matmul(p, z)) - dot(z, xy[0] + xy[1]) },
                   at: [x, y], initial: Tensor(zeros: [2]))
        }
        let problem = BilevelProblem(
            upper: { x, y in 0.5 * (y - Tensor([0.5, 2])).squaredNorm() + 0.5 * x.squaredNorm() },
            lower: { x, y in 0.5 * (y - Tensor([1, -1])).squaredNorm() + 0.5 * inner(x, y).squaredNorm() },
            dynamics: .gradientDescent(step: 0.5), innerSteps: 60)
        let x = Tensor([0.4, -0.3])
        let implicit = try Implicit(solver: .exact).hypergradient(of: problem, at: x, from: Tensor(zeros: [2]))
        let layered = gradient(at: x) { x in
            problem.upper(x, argmin(of: problem.lower, at: x, initial: Tensor(zeros: [2])))
        }
        print(implicit.hypergradient, layered)

        let reference = centralDifferences(at: x) { x in
            problem.upper(x, argmin(of: problem.lower, at: x, initial: Tensor(zeros: [2]))).scalar
        }
        XCTAssertLessThan(relativeError(implicit.hypergradient, reference), 1e-8)
        XCTAssertLessThan(relativeError(layered, reference), 1e-8)
    }
}
