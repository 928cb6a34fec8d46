import Foundation
import XCTest
@testable import AutoDiff

/// The stageable Cholesky: `cholesky`, `triangularSolve` and `CholeskyFactorization` — values against
/// the raw kernel and `choleskySolve` (≤ 1e-12 relative), derivatives by gradcheck at first order, VJP of
/// VJP and JVP (≤ 1e-6), and the staged forms against the eager ones.
final class FactorizationTests: XCTestCase {
    /// `M Mᵀ/n + I` for a deterministic M: symmetric positive definite.
    private func spd(_ n: Int) -> Tensor {
        let m = Tensor(shape: [n, n]) { Foundation.sin(0.37 * Double($0 * $0 % 1013) + 0.1) }
        return matmul(m, m, transposeA: false, transposeB: true) / Double(n) + Tensor(shape: [n, n]) { $0 % (n + 1) == 0 ? 1 : 0 }
    }

    /// A full square matrix whose lower triangle has a diagonal far from zero (entries above it too, which
    /// `triangularSolve` must ignore).
    private func triangle(_ n: Int) -> Tensor {
        Tensor(shape: [n, n]) { 0.8 * Foundation.sin(1.1 * Double($0) + 0.2) + ($0 % (n + 1) == 0 ? 3 : 0) }
    }

    private func relativeDifference(_ x: Tensor, _ y: Tensor) -> Double {
        zip(x.scalars, y.scalars).map { abs($0 - $1) }.max()! / max(y.scalars.map(abs).max()!, 1e-300)
    }

    func testCholeskyReproducesTheMatrixAndIsLower() {
        for n in [1, 5, 70, 150] {  // one and several blocks of 64 columns
            let a = spd(n), l = cholesky(a)
            XCTAssertLessThanOrEqual(relativeDifference(matmul(l, l, transposeA: false, transposeB: true), a), 1e-13, "n = \(n)")
            for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { XCTAssertEqual(l.scalars[i * n + j], 0) } }
            XCTAssertEqual(l.scalars, CholeskyFactor(a.scalars, n: n)!.lowerFactor)
        }
    }

    /// The blocked factor (GEMM per block, Crout on the diagonal block, the panel as one triangular
    /// solve) against the unblocked Cholesky–Banachiewicz loop, across three blocks and a partial one.
    func testBlockedFactorMatchesUnblockedLoop() {
        let n = 150, a = spd(n).scalars
        var reference = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0...i {
            let sum = (0..<j).reduce(a[i * n + j]) { $0 - reference[i * n + $1] * reference[j * n + $1] }
            reference[i * n + j] = i == j ? sum.squareRoot() : sum / reference[j * n + j]
        } }
        let blocked = CholeskyFactor(a, n: n)!.lowerFactor
        let relative = zip(blocked, reference).map { abs($0 - $1) }.max()! / reference.map(abs).max()!
        XCTAssertLessThanOrEqual(relative, 1e-12)
    }

    func testFactorizationSolvesMatchCholeskySolve() throws {
        for (n, k) in [(70, 1), (70, 3), (150, 9)] {  // column by column and blocked on the GEMM
            let a = spd(n), factorization = CholeskyFactorization(a)
            let b = k == 1 ? Tensor((0..<n).map { Foundation.cos(0.3 * Double($0)) })
                : Tensor(shape: [n, k]) { Foundation.cos(0.29 * Double($0) + 0.2) }
            let reference = try XCTUnwrap(choleskySolve(a, b))
            XCTAssertLessThanOrEqual(relativeDifference(factorization.solve(b), reference), 1e-12, "n = \(n), k = \(k)")
            XCTAssertLessThanOrEqual(relativeDifference(matmul(a, factorization.solve(b)), b), 1e-12, "n = \(n), k = \(k)")
        }
    }

    func testTriangularSolveReadsTheLowerTriangleOnly() {
        let n = 6, t = triangle(n), b = Tensor(shape: [n, 2]) { Foundation.cos(Double($0)) }
        let lowerOnly = t * Tensor(shape: [n, n]) { $0 / n >= $0 % n ? 1 : 0 }
        for transposed in [false, true] {
            let y = triangularSolve(t, b, transposed: transposed)
            XCTAssertEqual(y.scalars, triangularSolve(lowerOnly, b, transposed: transposed).scalars)
            let product = matmul(lowerOnly, y, transposeA: transposed, transposeB: false)
            XCTAssertLessThanOrEqual(relativeDifference(product, b), 1e-13, "transposed \(transposed)")
        }
    }

    private static let unaryCases: [GradcheckAtEveryOrder.Unary] = {
        let m = Tensor(shape: [4, 4]) { Foundation.sin(0.7 * Double($0) + 0.3) }
        let a = matmul(m, m, transposeA: false, transposeB: true) + Tensor(shape: [4, 4]) { $0 % 5 == 0 ? 1 : 0 }
        return [("cholesky", a, { cholesky($0) })]
    }()

    private static let binaryCases: [GradcheckAtEveryOrder.Binary] = {
        let t = Tensor(shape: [4, 4]) { 0.8 * Foundation.sin(1.1 * Double($0) + 0.2) + ($0 % 5 == 0 ? 3 : 0) }
        let m = Tensor(shape: [4, 4]) { Foundation.sin(0.7 * Double($0) + 0.3) }
        let a = matmul(m, m, transposeA: false, transposeB: true) + Tensor(shape: [4, 4]) { $0 % 5 == 0 ? 1 : 0 }
        let vector = Tensor([0.3, -1.2, 0.7, 2]), matrix = Tensor(shape: [4, 9]) { Foundation.cos(0.4 * Double($0) + 1) }
        return [
            ("triangularSolve vector", t, vector, { triangularSolve($0, $1, transposed: false) }),
            ("triangularSolve transposed vector", t, vector, { triangularSolve($0, $1, transposed: true) }),
            ("triangularSolve matrix (blocked)", t, matrix, { triangularSolve($0, $1, transposed: false) }),
            ("triangularSolve transposed matrix (blocked)", t, matrix, { triangularSolve($0, $1, transposed: true) }),
            ("CholeskyFactorization.solve", a, vector, { CholeskyFactorization($0).solve($1) }),
        ]
    }()

    func testFirstOrder() { GradcheckAtEveryOrder.firstOrder(Self.unaryCases, Self.binaryCases) }

    func testVJPRulesAtSecondOrder() { GradcheckAtEveryOrder.vjpRules(Self.unaryCases, Self.binaryCases) }

    func testJVPRulesAtSecondOrder() { GradcheckAtEveryOrder.jvpRules(Self.unaryCases, Self.binaryCases) }

    /// Staged with A symbolic: the same values as eager (the program factors once per call: two solves
    /// with one factorisation, and two factorisations of the same matrix merged by `optimized()`), and the
    /// staged gradient equals the eager one.
    func testStagedFactorizationMatchesEager() {
        let n = 5, a = spd(n), b = Tensor((0..<n).map { Foundation.cos(0.3 * Double($0)) })
        let f: ([Tensor]) -> Tensor = { s in
            let w = CholeskyFactorization(s[0]).solve(s[1])
            return CholeskyFactorization(s[0]).solve(w * w)
        }
        let program = stage(shapes: [[n, n], [n]], f).optimized()
        XCTAssertLessThanOrEqual(relativeDifference(program(a, b), f([a, b])), 1e-12)
        let factorizations = program.instructions.filter {
            if case let .apply(op, _) = $0.operation { return op.name == "cholesky" } else { return false }
        }
        XCTAssertEqual(factorizations.count, 1)
        let loss: (Tensor) -> Tensor = { a in f([a, b]).squaredNorm() }
        let stagedGradient = stage(shape: [n, n]) { a in gradient(at: a, of: loss) }.optimized()
        XCTAssertLessThanOrEqual(relativeDifference(stagedGradient(a), gradient(at: a, of: loss)), 1e-12)
    }
}
