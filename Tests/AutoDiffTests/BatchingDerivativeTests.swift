import Foundation
import XCTest
@testable import AutoDiff

/// Derivatives as batched programs: `Program.jacobian()` and `Program.hessian()` equal the engine's
/// row-by-row `jacobian(at:of:)` / `hessian(at:of:)` (≤ 1e-12), and the vmapped gradient program of a
/// per-sample loss equals a loop of eager gradients (≤ 1e-12), without a per-element loop.
final class BatchingDerivativeTests: XCTestCase {
    func assertClose(_ a: Tensor, _ b: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, message, file: file, line: line)
        XCTAssertTrue(a.isApproximatelyEqual(to: b, tolerance: 1e-12), "\(message): \(a) vs \(b)", file: file, line: line)
    }

    static let mixing = OpGradcheckTests.input([3, 4], offset: 2)

    /// `x ↦ tanh(M x) + x[0..<3] Σx`, `R⁴ → R³`.
    static func vectorMap(_ x: Tensor) -> Tensor { tanh(matmul(mixing, x)) + x[0..<3] * x.sum() }

    /// The Rosenbrock function `Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²`.
    static func rosenbrock(_ x: Tensor) -> Tensor {
        let n = x.shape[0], head = x[0..<(n - 1)], tail = x[1..<n]
        let gap = tail - head * head, offset = 1 - head
        return (100 * gap * gap + offset * offset).sum()
    }

    func testJacobianProgramEqualsEngineJacobian() {
        let x = OpGradcheckTests.input([4], offset: 1)
        let staged = stage(shape: [4], Self.vectorMap).jacobian()
        XCTAssertEqual(staged.outputShapes, [[3, 4]])
        assertClose(staged(x), jacobian(at: x, of: Self.vectorMap), "vector map")

        let matrixMap: (Tensor) -> Tensor = { m in (sin(m) * m).sum(alongAxis: 1) }
        let m = OpGradcheckTests.input([2, 3])
        assertClose(stage(shape: [2, 3], matrixMap).jacobian()(m), jacobian(at: m, of: matrixMap), "matrix map")
    }

    func testHessianProgramEqualsEngineHessian() {
        let x = OpGradcheckTests.input([6], offset: 0.5)
        assertClose(stage(shape: [6], Self.rosenbrock).hessian()(x), hessian(at: x, of: Self.rosenbrock), "rosenbrock")

        let data = OpGradcheckTests.input([5, 3], offset: 1)
        let regression: (Tensor) -> Tensor = { w in
            let output = tanh(matmul(data, w.reshaped(to: [3, 2])))
            return (output * output).sum() + 0.1 * w.squaredNorm()
        }
        let w = OpGradcheckTests.input([6], offset: 3)
        let staged = stage(shape: [6], regression).hessian()
        assertClose(staged(w), hessian(at: w, of: regression), "tanh regression")
        // Forward-over-reverse: the HVP program batched over the basis directions gives the same matrix.
        let basis = Tensor(shape: [6, 6]) { i in i / 6 == i % 6 ? 1 : 0 }
        let hvps = stage(shape: [6], regression).hvp(mode: .forwardOverReverse).vmap(batchedInputs: [false, true], batchSize: 6)
        assertClose(hvps(w, basis), hessian(at: w, of: regression), "batched HVPs")
    }

    /// A two-layer network's squared loss on one sample `(x, y)`; parameters `W₁ [4, 5]`, `b₁ [5]`, `W₂ [5, 2]`.
    static func sampleLoss(_ p: [Tensor]) -> Tensor {
        let hidden = tanh(matmul(p[3], p[0]) + p[1])
        let residual = matmul(hidden, p[2]) - p[4]
        return (residual * residual).sum()
    }

    func testPerSampleGradientsEqualLoopOfEagerGradients() {
        let samples = 6
        let parameters = [OpGradcheckTests.input([4, 5]), OpGradcheckTests.input([5], offset: 1), OpGradcheckTests.input([5, 2], offset: 2)]
        let inputs = OpGradcheckTests.input([samples, 4], offset: 3), labels = OpGradcheckTests.input([samples, 2], offset: 4)
        let gradient = stage(shapes: parameters.map(\.shape) + [[4], [2]], Self.sampleLoss).gradient()
        let perSample = gradient.vmap(batchedInputs: [false, false, false, true, true], batchSize: samples)
        XCTAssertFalse(perSample.description.contains("concatenate("), "a rule fell back to the per-element loop")
        let batched = perSample.outputs(at: parameters + [inputs, labels])
        for i in 0..<samples {
            let eager = valueWithGradient(at: parameters + [inputs[i], labels[i]], of: Self.sampleLoss).gradients
            for k in 0..<3 { assertClose(batched[k][i], eager[k], "sample \(i) parameter \(k)") }
        }
    }
}
