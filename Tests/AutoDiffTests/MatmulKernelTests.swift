import Foundation
import XCTest
@testable import AutoDiff

/// The SIMD kernels against the textbook triple loop, for every transpose combination and for shapes
/// that hit each path (dot, matrix·vector both ways, vector·matrix, tails, the parallel split).
final class MatmulKernelTests: XCTestCase {
    func naive(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: [Double], _ b: [Double]) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k {
            c[i * n + j] += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j])
        } } }
        return c
    }

    func testAgainstTripleLoop() {
        let shapes = [(1, 1, 1), (1, 1, 9), (7, 13, 5), (5, 1, 17), (1, 11, 6), (3, 9, 1), (33, 17, 40), (130, 70, 40), (70, 300, 530), (2000, 1, 500)]
        for (m, n, k) in shapes {
            let a = (0..<(m * k)).map { Foundation.sin(0.7 * Double($0) + 0.1) }
            let b = (0..<(k * n)).map { Foundation.cos(0.3 * Double($0) + 0.2) }
            for ta in [false, true] { for tb in [false, true] {
                let expected = naive(ta, tb, m, n, k, a, b)
                var c = [Double](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    MatmulKernel.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k,
                                      a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                } } }
                let scale = expected.map(abs).max()!
                let error = zip(c, expected).map { abs($0 - $1) }.max()! / max(scale, 1)
                XCTAssertLessThan(error, 1e-12, "m \(m) n \(n) k \(k) transposeA \(ta) transposeB \(tb)")
            } }
        }
    }

    /// The large transposed matrix·vector split across cores gives the same bits as run by one core.
    func testParallelSplitIsDeterministic() {
        let a = Tensor(shape: [2000, 500]) { Foundation.sin(0.01 * Double($0)) }
        let r = Tensor(shape: [2000]) { Foundation.cos(0.1 * Double($0)) }
        let first = matmul(r, a), second = matmul(r, a)
        XCTAssertEqual(first.scalars, second.scalars)
        var serial = [Double](repeating: 0, count: 500)
        for p in 0..<2000 { for i in 0..<500 { serial[i] += r.scalars[p] * a.scalars[p * 500 + i] } }
        XCTAssertLessThan(zip(first.scalars, serial).map { abs($0 - $1) }.max()!, 1e-11)
    }

    /// `AᵀA` of one matrix takes the symmetric path: the upper triangle against the triple loop and an
    /// exactly mirrored lower triangle, serial and split across cores; its gradient still sees both factors.
    func testGramOfOneMatrixIsSymmetricAndMatchesTripleLoop() {
        for (rows, columns) in [(9, 7), (600, 150)] {
            let a = Tensor(shape: [rows, columns]) { Foundation.sin(0.013 * Double($0 * $0 % 997) + 0.2) }
            let gram = matmul(a, a, transposeA: true, transposeB: false)
            let expected = naive(true, false, columns, columns, rows, a.scalars, a.scalars)
            XCTAssertLessThan(zip(gram.scalars, expected).map { abs($0 - $1) }.max()!, 1e-11, "\(rows)x\(columns)")
            for i in 0..<columns { for j in 0..<i { XCTAssertEqual(gram.scalars[i * columns + j], gram.scalars[j * columns + i]) } }
        }
        // d/dA Σ (AᵀA ⊙ W) = A (W + Wᵀ).
        let a = Tensor(shape: [5, 3]) { Foundation.cos(Double($0)) }, w = Tensor(shape: [3, 3]) { Double($0) - 4 }
        let g = gradient(at: a) { a in (matmul(a, a, transposeA: true, transposeB: false) * w).sum() }
        let expected = matmul(a, w + w.transposed)
        XCTAssertLessThan(zip(g.scalars, expected.scalars).map { abs($0 - $1) }.max()!, 1e-13)
    }
}
