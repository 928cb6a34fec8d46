import XCTest
import Bilevel

/// Structured problems (x an array of tensors, y a network `[[weight, bias], …]`): the methods' hypergradients, as bundles, against central differences of the
/// unrolled map; an x-dependent start with `X == Y`; `minimize` on bundles.
final class StructuredProblemTests: XCTestCase {
    let inputs = Tensor(shape: [5, 2], scalars: [1, 0, 0, 1, -1, 0.5, 0.3, -0.7, 0.2, 0.2])
    let targets = Tensor(shape: [5, 1], scalars: [0.5, -0.2, 0.1, 0.4, -0.3])

    func predict(_ layers: [[Tensor]]) -> Tensor {
        matmul(tanh(matmul(inputs, layers[0][0]) + layers[0][1]), layers[1][0]) + layers[1][1]
    }

    var problem: StructuredBilevelProblem<[Tensor], [[Tensor]]> {
        StructuredBilevelProblem(
            upper: { hyper, layers in (self.predict(layers) - self.targets + hyper[1]).squaredNorm() },
            lower: { hyper, layers in
                let decay = exp(hyper[0])
                return 0.5 * (self.predict(layers) - self.targets).squaredNorm()
                    + 0.5 * (decay.slice(alongAxis: 0, 0..<1) * layers[0][0].squaredNorm()).sum()
                    + 0.5 * (decay.slice(alongAxis: 0, 1..<2) * layers[1][0].squaredNorm()).sum()
            },
            dynamics: .gradientDescent(step: 0.2), innerSteps: 6)
    }
    /// Hyperparameters as an array of tensors: per-layer log-decays and an output shift.
    let hyper = [Tensor([-1, 0.5]), Tensor(0.1)]
    let layers = [
        [Tensor(shape: [2, 3], scalars: [0.3, -0.2, 0.5, 0.1, 0.4, -0.6]), Tensor([0.1, 0, -0.1])],
        [Tensor(shape: [3, 1], scalars: [0.7, -0.5, 0.2]), Tensor([0.05])],
    ]

    /// Central differences of `vec x ↦ F(x, y_T(x))` of a flat problem.
    func finiteDifferences(_ flat: BilevelProblem, at x: Tensor, from y0: (Tensor) -> Tensor) throws -> Tensor {
        let h = 1e-5
        return try Tensor(shape: x.shape, scalars: (0..<x.count).map { i in
            let e = Tensor(shape: x.shape) { $0 == i ? h : 0 }
            func value(_ x: Tensor) throws -> Double {
                let s = try BilevelOracle(flat).unroll(from: y0(x), x, steps: flat.innerSteps, like: y0(x)).final
                return flat.upper(x, s).scalar
            }
            return (try value(x + e) - value(x - e)) / (2 * h)
        })
    }

    func testMethodsReturnBundlesMatchingFiniteDifferences() throws {
        let flat = problem.flat(like: hyper, layers)
        let reference = try finiteDifferences(flat, at: hyper.flattened) { _ in self.layers.flattened }
        for method: any HypergradientMethod in [ReverseUnroll(), ForwardUnroll()] {
            let result = try method.hypergradient(of: problem, at: hyper, from: layers)
            XCTAssertEqual(result.hypergradient[0].shape, [2])
            XCTAssertEqual(result.innerSolution[1][0].shape, [3, 1])
            let error = ((result.hypergradient.flattened - reference).squaredNorm().scalar / reference.squaredNorm().scalar).squareRoot()
            print("structured \(method.name): relative error vs central differences \(error)")
            XCTAssertLessThan(error, 1e-8)
        }
    }

    /// MAML on bundles: y = adapted layers starting at the meta-parameters (`initialization: { $0 }`).
    func testStructuredInitializationIsDifferentiated() throws {
        let maml = StructuredBilevelProblem<[[Tensor]], [[Tensor]]>(
            upper: { _, adapted in (self.predict(adapted) + 0.3 - self.targets).squaredNorm() },
            lower: { _, adapted in (self.predict(adapted) - self.targets).squaredNorm() },
            dynamics: .gradientDescent(step: 0.1), innerSteps: 3, initialization: { theta in theta })
        let flat = maml.flat(like: layers, layers)
        let reference = try finiteDifferences(flat, at: layers.flattened) { $0 }
        let g = try ReverseUnroll().hypergradient(of: maml, at: layers, from: layers).hypergradient
        let error = ((g.flattened - reference).squaredNorm().scalar / reference.squaredNorm().scalar).squareRoot()
        print("structured MAML (y0 = θ) RAD: relative error vs central differences \(error)")
        XCTAssertLessThan(error, 1e-8)
    }

    func testMinimizeOnBundlesDecreasesTheUpperObjective() throws {
        let run = try minimize(problem, method: ReverseUnroll(), from: hyper, y0: layers,
                               optimizer: .gradientDescent(step: 0.05), steps: 15)
        XCTAssertEqual(run.x[0].shape, [2])
        XCTAssertLessThan(run.record.upperValues.last!, run.record.upperValues.first!)
    }
}
