import Foundation
import XCTest
import _Differentiation
@testable import AutoDiff
import Workloads

@differentiable(reverse)
func predict(_ w: Tensor, _ x: Tensor) -> Tensor {
    tanh(matmul(x, w)).sum(alongAxis: 1)
}

@differentiable(reverse, wrt: w)
func loss(_ w: Tensor, _ x: Tensor, _ y: Tensor) -> Tensor {
    logisticLoss(logits: predict(w, x), labels: y)
}

/// Compiler-derived gradients (Swift's `_Differentiation`, using our registered tensor-level rules)
/// against the tape, on the workloads' losses: they must agree to 1e-12 relative.
final class SourceToSourceTests: XCTestCase {
    func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let scale = max(b.scalars.map(Swift.abs).max() ?? 0, 1e-300)
        let error = zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(error / scale, 1e-12, what, file: file, line: line)
    }

    func testMLPCompilerGradientEqualsTape() {
        let mlp = MLPWorkload()
        let compiler = compilerGradient(at: mlp.theta) { mlp.loss($0) }
        let tape = gradient(at: mlp.theta, of: mlp.loss)
        assertClose(compiler, tape, "MLP")
        XCTAssertGreaterThan(tape.squaredNorm().scalar, 1e-6)
    }

    func testRosenbrockCompilerGradientEqualsAnalytic() {
        let rosen = RosenbrockWorkload(n: 30)
        let compiler = compilerGradient(at: rosen.x) { rosen.value($0) }
        assertClose(compiler, Tensor(rosen.exactGradient(rosen.x)), "Rosenbrock")
    }

    /// Ridge and hyper-cleaning objectives, written as plain `@differentiable(reverse)` Swift functions
    /// of (x, w): both partial gradients agree with the tape's.
    func testBilevelObjectivesCompilerGradientsEqualTape() {
        let ridge = RidgeWorkload(n: 60, d: 8)
        let w = Tensor((0..<8).map { 0.1 * Foundation.sin(Double($0)) })
        @differentiable(reverse)
        func ridgeLower(_ x: Tensor, _ w: Tensor) -> Tensor {
            0.5 / 60 * (matmul(ridge.a, w) - ridge.b).squaredNorm() + 0.5 * (exp(x) * w * w).sum()
        }
        let (cx, cw) = compilerGradient(at: ridge.x0, w, of: ridgeLower)
        let (tx, tw) = gradient(at: ridge.x0, w, of: ridgeLower)
        assertClose(cx, tx, "ridge ∇x")
        assertClose(cw, tw, "ridge ∇w")
        assertClose(tx, gradient(at: ridge.x0, w, of: ridge.lower).0, "ridge, workload form")

        let cleaning = HyperCleaningWorkload(n: 40, m: 20, d: 6)
        let v = Tensor((0..<6).map { 0.3 * Foundation.cos(Double($0)) })
        @differentiable(reverse)
        func cleaningLower(_ x: Tensor, _ w: Tensor) -> Tensor {
            (sigmoid(x) * softplus(-(cleaning.ytr * matmul(cleaning.xtr, w)))).mean() + 1e-3 * w.squaredNorm()
        }
        let (hx, hw) = compilerGradient(at: cleaning.x0, v, of: cleaningLower)
        let (kx, kw) = gradient(at: cleaning.x0, v, of: cleaning.lower)
        assertClose(hx, kx, "cleaning ∇x")
        assertClose(hw, kw, "cleaning ∇w")
    }

    /// Every registered op once more, against the tape, through one composite function.
    func testEveryRegisteredOpMatchesTape() {
        let x = Tensor(shape: [2, 3]) { 0.5 + 0.3 * Foundation.sin(Double($0) + 0.2) }
        @differentiable(reverse)
        func composite(_ x: Tensor) -> Tensor {
            let a = exp(x) + log(x) - sqrt(x) * tanh(x) / (sigmoid(x) + 1)
            let b = softplus(x) + relu(x - 0.6) + sin(x) * cos(x) + abs(x - 0.7) + sign(x) * x
            let c = pow(x, 1.5) + pow(x, x) + maximum(x, 0.6 * x.transposed.transposed) - minimum(x, x * 0.9)
            let m = matmul(a, b.transposed) + matmul(a, b, transposeA: true, transposeB: false).sum()
            let rows = concatenate([x[0], x[1]], alongAxis: 0).reshaped(to: [3, 2])
            let s = softmax(c).sum(alongAxis: 0) + logSoftmax(c, alongAxis: 0).mean(alongAxis: 0)
            let t = x.logSumExp() + x.logSumExp(alongAxis: 1).sum() + x.slice(alongAxis: 1, 1..<3).squaredNorm()
            let u = dot(x, b) + x.sum(toShape: [3]).broadcast(to: [2, 3]).mean() + x.expandingShape(at: 0).sum()
            let v = x[0..<1].embedded(in: [2, 3], alongAxis: 0, at: 1).sum() + (2.0 * x - 1.0 + 3.0 / x).mean()
            let w = logisticLoss(logits: x, labels: x * 0 + 1) + crossEntropy(logits: x, labels: softmax(x * 2))
            let z = solve(matmul(x, x.transposed) + 2 * Tensor(ones: [2, 2]).broadcast(to: [2, 2]), x[0..<2].sum(alongAxis: 1))
            return m.sum() + rows.mean() + s.sum() + t + u + v + w + z.sum() + (1.0 - x.mean()) * (x.mean() - 0.5)
        }
        assertClose(compilerGradient(at: x, of: composite), gradient(at: x, of: composite), "composite")
    }

    /// The snippet of Docs/source-to-source.md.
    func testDocumentationSnippet() {
        let x = Tensor(shape: [4, 3]) { i in Foundation.sin(Double(i)) }
        let y = Tensor([1, -1, 1, -1])
        let w = Tensor(shape: [3, 2]) { i in 0.1 * Double(i) }
        let byCompiler = compilerGradient(at: w) { w in loss(w, x, y) }   // Swift's AD
        let byTape = gradient(at: w) { w in loss(w, x, y) }               // the tape
        assertClose(byCompiler, byTape, "documentation snippet")
        XCTAssertTrue(gradcheck(at: w) { w in loss(w, x, y) }.passes())
    }

    /// The tangent vector's zero is shape-less and neutral for every shape.
    func testTangentZeroIsNeutral() {
        let t = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        XCTAssertEqual(Tensor.zero + t, t)
        XCTAssertEqual(t + .zero, t)
        XCTAssertEqual(t - .zero, t)
        var moved = t
        moved.move(by: .zero)
        XCTAssertEqual(moved, t)
        // A parameter no path reaches gets zeros of its own shape from the bridge.
        let (gx, gy) = compilerGradient(at: t, Tensor([5, 6, 7])) { x, _ in x.sum() }
        XCTAssertEqual(gx, Tensor(ones: [2, 2]))
        XCTAssertEqual(gy, Tensor(zeros: [3]))
    }
}
