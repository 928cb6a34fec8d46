import CKernels
import Foundation
import XCTest
@testable import AutoDiff

/// The C kernels on every instruction set this CPU runs against the portable ones (≤ 1e-12 relative),
/// their independence of the split across cores, and the fused normal-equation product and its rules.
final class KernelDispatchTests: XCTestCase {
    /// The instruction sets to compare: portable and everything up to this CPU's best.
    private var instructionSets: [KernelDispatch.InstructionSet] {
        KernelDispatch.InstructionSet.allCases.filter { $0.rawValue <= KernelDispatch.best.rawValue }
    }

    private func gemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: [Double], _ b: [Double]) -> [Double] {
        var c = [Double](repeating: .nan, count: m * n)
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            MatmulKernel.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
        } } }
        return c
    }

    private func relativeDifference(_ x: [Double], _ y: [Double]) -> Double {
        let scale = max(y.map(abs).max() ?? 0, 1)
        return zip(x, y).map { abs($0 - $1) }.max()! / scale
    }

    func testEveryInstructionSetAgreesWithPortableOnGEMM() {
        print("kernels: best instruction set \(KernelDispatch.best), active \(KernelDispatch.active)")
        // Edge tiles in every direction, several packing depths (k > 256), the parallel split.
        let shapes = [(5, 7, 3), (13, 17, 300), (128, 64, 32), (61, 250, 513), (300, 90, 40)]
        for (m, n, k) in shapes {
            let a = (0..<(m * k)).map { Foundation.sin(0.37 * Double($0) + 0.1) }
            let b = (0..<(k * n)).map { Foundation.cos(0.29 * Double($0) + 0.2) }
            for ta in [false, true] { for tb in [false, true] {
                let reference = KernelDispatch.with(.portable) { gemm(ta, tb, m, n, k, a, b) }
                for isa in instructionSets {
                    let got = KernelDispatch.with(isa) { gemm(ta, tb, m, n, k, a, b) }
                    XCTAssertLessThanOrEqual(relativeDifference(got, reference), 1e-12, "\(isa) \(m)×\(n)×\(k) \(ta) \(tb)")
                }
            } }
        }
    }

    /// One GEMM call over all rows and the same product computed 7 rows at a time give the same bits:
    /// each entry sums over k in an order that does not depend on how the rows are split between threads.
    func testGEMMDoesNotDependOnTheRowSplit() {
        let (m, n, k) = (200, 150, 600)
        let a = (0..<(m * k)).map { Foundation.sin(0.011 * Double($0 * $0 % 1009)) }
        let b = (0..<(k * n)).map { Foundation.cos(0.017 * Double($0 * 7 % 997)) }
        for isa in instructionSets {
            KernelDispatch.with(isa) {
                let whole = gemm(false, false, m, n, k, a, b)
                var pieces = [Double](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in pieces.withUnsafeMutableBufferPointer { pc in
                    for start in stride(from: 0, to: m, by: 7) {
                        ckernels_gemm(false, false, min(7, m - start), n, k, 1, pa.baseAddress! + start * k, k,
                                      pb.baseAddress!, n, 0, pc.baseAddress! + start * n, n)
                    }
                } } }
                XCTAssertEqual(whole, pieces, "\(isa)")
            }
        }
    }

    func testFusedNormalProductMatchesTwoProductsOnEveryInstructionSet() {
        for (rows, columns) in [(9, 5), (2000, 500)] {
            let a = Tensor(shape: [rows, columns]) { Foundation.sin(0.013 * Double($0 * $0 % 997) + 0.2) }
            let v = Tensor(shape: [columns]) { Foundation.cos(0.7 * Double($0)) }
            let b = Tensor(shape: [rows]) { Foundation.sin(0.3 * Double($0)) }
            let expected = KernelDispatch.with(.portable) { matmul(matmul(a, v) - b, a).scalars }
            let expectedGram = KernelDispatch.with(.portable) { matmul(matmul(a, v), a).scalars }
            for isa in instructionSets {
                KernelDispatch.with(isa) {
                    let fused = normalProduct(a, v, minus: b)
                    XCTAssertLessThanOrEqual(relativeDifference(fused.scalars, expected), 1e-12, "\(isa) \(rows)×\(columns)")
                    XCTAssertEqual(fused.scalars, normalProduct(a, v, minus: b).scalars, "repeatable bits")
                    XCTAssertLessThanOrEqual(relativeDifference(normalProduct(a, v).scalars, expectedGram), 1e-12)
                }
            }
        }
    }

    /// `normalProduct` against central differences in each input, at first and second order.
    func testNormalProductGradcheckFirstAndSecondOrder() {
        let a = Tensor(shape: [4, 3]) { 0.8 * Foundation.sin(1.3 * Double($0) + 0.4) }
        let v = Tensor([0.3, -0.7, 0.5]), b = Tensor([0.1, -0.2, 0.4, 0.9]), weights = Tensor([1.0, -2.0, 0.5])
        let cases: [(String, Tensor, (Tensor) -> Tensor)] = [
            ("a", a, { normalProduct($0, v, minus: b) }),
            ("v", v, { normalProduct(a, $0, minus: b) }),
            ("b", b, { normalProduct(a, v, minus: $0) }),
            ("v without b", v, { normalProduct(a, $0) }),
            ("a without b", a, { normalProduct($0, v) }),
        ]
        for (name, x, f) in cases {
            XCTAssertLessThanOrEqual(gradcheck(at: x, of: f).maxRelativeError, 1e-6, "first order in \(name)")
            let secondOrder = gradcheck(at: x) { x in gradient(at: x) { x in (f(x) * weights).sum() * (f(x) * weights).sum() } }
            XCTAssertLessThanOrEqual(secondOrder.maxRelativeError, 1e-6, "second order in \(name)")
        }
    }

    /// The blocked factorisations (several blocks) solve to the accuracy of the system, on every
    /// instruction set.
    func testBlockedFactorisationsSolve() {
        let n = 150
        let m = Tensor(shape: [n, n]) { Foundation.sin(0.713 * Double($0 * $0 % 1009) + 0.1) + ($0 / n == $0 % n ? 2 : 0) }
        let spd = matmul(m, m, transposeA: true, transposeB: false) + Tensor(shape: [n, n]) { $0 / n == $0 % n ? Double(n) : 0 }
        let x = Tensor(shape: [n]) { Foundation.cos(0.5 * Double($0)) }
        for isa in instructionSets {
            KernelDispatch.with(isa) {
                let b = matmul(spd, x), c = matmul(m, x)
                XCTAssertLessThanOrEqual(relativeDifference(choleskySolve(spd, b)!.scalars, x.scalars), 1e-10, "Cholesky \(isa)")
                XCTAssertLessThanOrEqual(relativeDifference(solve(m, c).scalars, x.scalars), 1e-8, "LU \(isa)")
            }
        }
    }

    func testSwitchIsClampedToTheCPU() {
        let previous = KernelDispatch.active
        KernelDispatch.active = .avx512
        XCTAssertEqual(KernelDispatch.active, KernelDispatch.best)
        KernelDispatch.active = previous
        XCTAssertEqual(KernelDispatch.active, previous)
    }
}
