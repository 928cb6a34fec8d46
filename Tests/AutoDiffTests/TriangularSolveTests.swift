import Foundation
import XCTest
@testable import AutoDiff

/// The triangular solves with many right-hand sides, blocked on the GEMM, against the same factors solved
/// one column at a time (≤ 1e-12 relative), on every instruction set, across several row blocks.
final class TriangularSolveTests: XCTestCase {
    private let instructionSets = KernelDispatch.InstructionSet.allCases.filter { $0.rawValue <= KernelDispatch.best.rawValue }

    /// Each column of the row-major `[n, k]` `b` solved alone by `solve` (k = 1, the column path).
    private func columnByColumn(_ b: [Double], n: Int, k: Int, _ solve: ([Double]) -> [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: n * k)
        for c in 0..<k {
            let x = solve((0..<n).map { b[$0 * k + c] })
            for i in 0..<n { out[i * k + c] = x[i] }
        }
        return out
    }

    private func relativeDifference(_ x: [Double], _ y: [Double]) -> Double {
        zip(x, y).map { abs($0 - $1) }.max()! / max(y.map(abs).max()!, 1)
    }

    func testBlockedSolvesMatchColumnByColumn() {
        let (n, k) = (150, 19)  // three row blocks, the last one partial
        let m = (0..<(n * n)).map { Foundation.sin(0.37 * Double($0 * $0 % 1013) + 0.1) }
        // A = M Mᵀ/n + I: symmetric positive definite (Cholesky) and a non-symmetric M + 3I (LU, pivoting).
        var spd = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            spd[i * n + j] = (0..<n).reduce(0) { $0 + m[i * n + $1] * m[j * n + $1] } / Double(n) + (i == j ? 1 : 0)
        } }
        let general = (0..<(n * n)).map { m[$0] + ($0 % (n + 1) == 0 ? 3 : 0) }
        let b = (0..<(n * k)).map { Foundation.cos(0.29 * Double($0) + 0.2) }
        for isa in instructionSets {
            KernelDispatch.with(isa) {
                let cholesky = CholeskyFactor(spd, n: n)!
                let blocked = cholesky.solve(b, columns: k)
                XCTAssertLessThanOrEqual(relativeDifference(blocked, columnByColumn(b, n: n, k: k) { cholesky.solve($0) }), 1e-12, "\(isa)")
                let lu = LUFactors(general, n: n)!
                let blockedLU = lu.solve(b, columns: k)
                XCTAssertLessThanOrEqual(relativeDifference(blockedLU, columnByColumn(b, n: n, k: k) { lu.solve($0, columns: 1) }), 1e-12, "\(isa)")
                // The solutions solve the systems: A X = B.
                for (matrix, x) in [(spd, blocked), (general, blockedLU)] {
                    var residual = 0.0
                    for i in 0..<n { for j in 0..<k {
                        residual = max(residual, abs((0..<n).reduce(0) { $0 + matrix[i * n + $1] * x[$1 * k + j] } - b[i * k + j]))
                    } }
                    XCTAssertLessThanOrEqual(residual, 1e-9, "\(isa)")
                }
            }
        }
    }
}
