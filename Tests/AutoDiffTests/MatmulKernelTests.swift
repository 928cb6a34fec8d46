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
        let shapes = [(1, 1, 1), (1, 1, 9), (7, 13, 5), (5, 1, 17), (1, 11, 6), (3, 9, 1), (33, 17, 40), (130, 70, 40), (2000, 1, 500)]
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
}
