import AutoDiff
import Foundation
import XCTest

/// The engine guide's snippets for staged programs and model ops (Docs/guide.md), compiled against the
/// public API only and checked against the eager engine.
final class EngineGuideSnippetTests: XCTestCase {
    /// The first snippet of Docs/guide.md, "Staged programs".
    func testGuideSnippet() {
        let program = stage(shape: [3]) { x in (sin(x) * x).sum() }
        let gradientProgram = program.gradient().optimized()
        let hvpProgram = program.hvp(mode: .forwardOverReverse).optimized()
        let x = Tensor([0.5, -1.0, 2.0]), v = Tensor([1, 0, 0])
        let g = gradientProgram(x)     // the same numbers as gradient(at: x) { (sin($0) * $0).sum() }
        let hv = hvpProgram(x, v)      // the same numbers as hvp(at: x, direction: v) { … }
        print(hvpProgram.swiftSource(functionName: "sinHVP"))
        XCTAssertTrue(g.isApproximatelyEqual(to: gradient(at: x) { (sin($0) * $0).sum() }, tolerance: 1e-13))
        XCTAssertTrue(hv.isApproximatelyEqual(to: hvp(at: x, direction: v) { (sin($0) * $0).sum() }, tolerance: 1e-13))
        XCTAssertTrue(hvpProgram.swiftSource(functionName: "sinHVP").contains("func sinHVP(_ v0: Tensor, _ v1: Tensor) -> Tensor {"))
    }

    /// The guide's snippet of "Executor and memory plan": a loop of HVPs into caller-owned results.
    func testGuideExecutorSnippet() {
        let hvpProgram = stage(shape: [1000]) { x in (x * x * x).sum() }.hvp(mode: .forwardOverReverse).optimized()
        let x = Tensor(shape: [1000]) { i in 0.001 * Double(i) }, v = Tensor(ones: [1000])
        var results = [Tensor]()                             // the first call fills it with tensors of the output shapes
        for _ in 0..<50 {
            hvpProgram.outputs(at: [x, v], into: &results)   // steady state: no heap allocation
        }
        let hv = results[0]                                  // 6 x ⊙ v
        XCTAssertTrue(hv.isApproximatelyEqual(to: 6 * x * v, tolerance: 1e-13))
    }

    /// The guide's model-ops example, verbatim; its value and a directional derivative checked
    /// against a direct evaluation and a central difference.
    func testGuideModelOpsExample() {
        let images = Tensor(shape: [2, 1, 6, 6]) { i in Foundation.sin(0.37 * Double(i)) }
        let filter = Tensor(shape: [4, 1, 3, 3]) { i in 0.2 * Foundation.cos(0.91 * Double(i)) }
        let dense = Tensor(shape: [36, 3]) { i in 0.1 * Foundation.sin(1.7 * Double(i)) }
        let (loss, filterGradient) = valueWithGradient(at: filter) { filter in
            let features = maxPool2d(tanh(conv2d(images, filter: filter, padding: 1)), kernel: 2)
            return crossEntropy(logits: matmul(features.reshaped(to: [2, 36]), dense), classIndices: [2, 0])
        }
        func objective(_ w: Tensor) -> Double {
            let logits = matmul(maxPool2d(tanh(conv2d(images, filter: w, padding: 1)), kernel: 2).reshaped(to: [2, 36]), dense)
            return crossEntropy(logits: logits, classIndices: [2, 0]).scalar
        }
        XCTAssertEqual(loss.scalar, objective(filter), accuracy: 1e-15)
        let v = Tensor(shape: filter.shape) { i in Foundation.sin(1.3 * Double(i) + 4.4) }, h = 1e-6
        let difference = (objective(filter + h * v) - objective(filter - h * v)) / (2 * h)
        XCTAssertEqual(dot(filterGradient, v).scalar, difference, accuracy: 1e-8)
    }
}
