import Foundation
import XCTest
import AutoDiff

/// Compiles and runs the snippet of Docs/guide.md's "Batching (vmap)" subsection (verbatim; checked by
/// `DocSnippetTests`), then checks its numbers.
final class BatchingSnippetTests: XCTestCase {
    func testPerSampleGradientAndHessianSnippet() {
        let sampleLoss = stage(shapes: [[3], [3], []]) { p in
            let residual = (p[0] * p[1]).sum() - p[2]      // w · x − y for one sample
            return residual * residual
        }
        let perSample = sampleLoss.gradient().vmap(batchedInputs: [false, true, true], batchSize: 4)
        let w = Tensor([0.5, -1.0, 2.0])
        let xs = Tensor(shape: [4, 3]) { i in Double(i % 5) - 2 }, ys = Tensor([1, 0, -1, 2])
        let gradients = perSample.outputs(at: [w, xs, ys])[0]   // [4, 3]: row i = 2 (w · xᵢ − yᵢ) xᵢ
        let hessian = stage(shape: [3]) { x in (x * x * x).sum() }.hessian()(w)   // diag(6 w)
        XCTAssertEqual(gradients.shape, [4, 3])
        for i in 0..<4 {
            let x = (0..<3).map { Double((3 * i + $0) % 5) - 2 }
            let residual = zip(w.scalars, x).map(*).reduce(0, +) - ys.scalars[i]
            for j in 0..<3 { XCTAssertEqual(gradients.scalars[3 * i + j], 2 * residual * x[j], accuracy: 1e-13) }
        }
        XCTAssertEqual(hessian.scalars, [3, 0, 0, 0, -6, 0, 0, 0, 12])
    }
}
