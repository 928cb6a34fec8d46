import XCTest
@testable import AutoDiff
import Workloads

/// `usingGramMatrices()` (run by `optimized()`): a `normalProduct` of a constant, tall matrix becomes
/// `G v − c` with `G = AᵀA`, `c = Aᵀb` folded once. P2's step and its VJP, replayed T = 1000 times as
/// RAD replays them, agree with the programs without the rewrite; the rewrite fires only where it pays.
final class GramRewriteTests: XCTestCase {
    /// P2's fused gradient step `w − η (Aᵀ(A w − b)/n + exp(x) ⊙ w)` (`RidgeWorkload.fusedGradientDescent`),
    /// staged without optimization.
    private func step(_ ridge: RidgeWorkload) -> Program {
        let (a, b, n, eta) = (ridge.a, ridge.b, Double(ridge.n), ridge.eta)
        return stage(shapes: [[ridge.d], [ridge.d]]) { s in
            s[0] - eta * (normalProduct(a, s[0], minus: b) / n + exp(s[1]) * s[0])
        }
    }

    /// How many applications are a `NormalProduct`, and how many values read a constant of `shape`.
    private func counts(_ program: Program, matrix shape: [Int]) -> (normalProducts: Int, readsOfMatrix: Int) {
        var normal = 0, reads = 0
        for instruction in program.instructions {
            guard case let .apply(op, arguments) = instruction.operation else { continue }
            if op is NormalProduct { normal += 1 }
            reads += arguments.filter { argument in
                if case .constant = program.instructions[argument].operation { return program.instructions[argument].shape == shape }
                return false
            }.count
        }
        return (normal, reads)
    }

    /// How many constants of `shape` the program holds.
    private func constants(_ program: Program, shape: [Int]) -> Int {
        program.instructions.filter { instruction in
            if case .constant = instruction.operation { return instruction.shape == shape }
            return false
        }.count
    }

    private func relativeError(_ actual: Tensor, _ expected: Tensor) -> Double {
        (actual - expected).squaredNorm().scalar.squareRoot() / expected.squaredNorm().scalar.squareRoot()
    }

    /// `w_T` after T steps from 0, then the reverse sweep of RAD from `λ_T = ∇F(w_T)`:
    /// `(λ, x̄) = vjp(w_t, x, λ)` for t = T−1 … 0, summing `x̄`. Returns `(w_T, Σ x̄, λ_{T−10})` (the
    /// adjoint after TRAD's ten steps; λ_0 itself has decayed to 0 at d = 20).
    private func replay(step: Program, vjp: Program, ridge: RidgeWorkload, steps: Int) -> (Tensor, Tensor, Tensor) {
        let x = ridge.x0
        var ws = [Tensor(zeros: [ridge.d])]
        for t in 0..<steps { ws.append(step(ws[t], x)) }
        var adjoint = gradient(at: ws[steps]) { w in ridge.upper(x, w) }, hypergradient = Tensor(zeros: [ridge.d])
        var truncated = adjoint
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let pulled = vjp.outputs(at: [ws[t], x, adjoint])
            adjoint = pulled[0]
            hypergradient = hypergradient + pulled[1]
            if t == steps - 10 { truncated = adjoint }
        }
        return (ws[steps], hypergradient, truncated)
    }

    private func assertReplaysAgree(n: Int, d: Int) {
        let ridge = RidgeWorkload(n: n, d: d), raw = step(ridge), rawVJP = raw.vjp()
        let optimizedStep = raw.optimized(), optimizedVJP = rawVJP.optimized()
        XCTAssertEqual(counts(optimizedStep, matrix: [n, d]).normalProducts, 0, "\(optimizedStep)")
        XCTAssertEqual(counts(optimizedVJP, matrix: [n, d]).normalProducts, 0, "\(optimizedVJP)")
        XCTAssertEqual(counts(optimizedStep, matrix: [n, d]).readsOfMatrix, 0, "A is no longer read: \(optimizedStep)")
        XCTAssertEqual(counts(optimizedVJP, matrix: [n, d]).readsOfMatrix, 0, "A is no longer read: \(optimizedVJP)")
        XCTAssertEqual(constants(optimizedStep, shape: [d, d]), 1, "one G: \(optimizedStep)")
        let expected = replay(step: raw, vjp: rawVJP, ridge: ridge, steps: 1000)
        let actual = replay(step: optimizedStep, vjp: optimizedVJP, ridge: ridge, steps: 1000)
        for (name, a, e) in [("w_T", actual.0, expected.0), ("hypergradient", actual.1, expected.1), ("λ_{T−10}", actual.2, expected.2)] {
            XCTAssertLessThanOrEqual(relativeError(a, e), 1e-12, "\(n)x\(d) \(name)")
        }
    }

    func testP2StepAndVJPReplayedThousandStepsAgreeAtD20() { assertReplaysAgree(n: 200, d: 20) }

    func testP2StepAndVJPReplayedThousandStepsAgreeAtD100() { assertReplaysAgree(n: 1000, d: 100) }

    /// The step JVP holds `normalProduct(A, w, minus: b)` and `normalProduct(A, ẇ)`: one G serves both.
    func testOneGramMatrixServesEveryProductOfTheSameMatrix() {
        let ridge = RidgeWorkload(n: 200, d: 20), raw = step(ridge).jvp(), optimized = raw.optimized()
        XCTAssertEqual(counts(raw, matrix: [200, 20]).normalProducts, 2, "\(raw)")
        XCTAssertEqual(counts(optimized, matrix: [200, 20]).normalProducts, 0, "\(optimized)")
        XCTAssertEqual(constants(optimized, shape: [20, 20]), 1, "\(optimized)")
        let w = Tensor((0..<20).map { 0.01 * sin(Double($0)) }), tangent = Tensor((0..<20).map { cos(0.3 * Double($0)) })
        let arguments = [w, ridge.x0, tangent, Tensor((0..<20).map { 0.1 * Double($0 % 3) })]
        for (a, e) in zip(optimized.outputs(at: arguments), raw.outputs(at: arguments)) {
            XCTAssertLessThanOrEqual(relativeError(a, e), 1e-12)
        }
    }

    /// `normalProduct(A, v, minus: b)` for A `[rows, columns]` (constant unless `matrixIsInput`) and b
    /// constant unless `targetIsInput`, optimized; with the number of `NormalProduct` left and the
    /// error against the eager product.
    private func rewrite(rows: Int, columns: Int, matrixIsInput: Bool = false, targetIsInput: Bool = false) -> (left: Int, error: Double) {
        let a = Tensor(shape: [rows, columns]) { k in sin(0.37 * Double(k) + 0.1 * Double(k % 7)) }
        let b = Tensor((0..<rows).map { cos(0.5 * Double($0)) }), v = Tensor((0..<columns).map { 0.2 * sin(Double($0) + 1) })
        let program = stage(shapes: [[rows, columns], [columns], [rows]]) { s in
            normalProduct(matrixIsInput ? s[0] : a, s[1], minus: targetIsInput ? s[2] : b)
        }.optimized()
        return (counts(program, matrix: [rows, columns]).normalProducts,
                relativeError(program.outputs(at: [a, v, b])[0], normalProduct(a, v, minus: b)))
    }

    func testFiresOnlyOnAConstantMatrixAtMostHalfAsWideAsTall() {
        let atBound = rewrite(rows: 40, columns: 20)
        XCTAssertEqual(atBound.left, 0, "d = n/2: rewritten")
        XCTAssertLessThanOrEqual(atBound.error, 1e-12)
        XCTAssertEqual(rewrite(rows: 39, columns: 20).left, 1, "d > n/2: the fused product reads less")
        XCTAssertEqual(rewrite(rows: 100, columns: 20, matrixIsInput: true).left, 1, "A an input: nothing to fold")
        XCTAssertEqual(rewrite(rows: 100, columns: 20, targetIsInput: true).left, 1, "b an input: Aᵀb would read A anyway")
    }

    /// P1's lower HVP `AᵀA v/n + exp(x) ⊙ v` (the normal product found by `fusingNormalProducts()`, then
    /// rewritten) and P3's (a weighted `Aᵀ D A v`, left alone) keep their values.
    func testP1AndP3HessianVectorProductsKeepTheirValues() {
        let ridge = RidgeWorkload(n: 200, d: 20), cleaning = HyperCleaningWorkload(n: 100, m: 40, d: 10)
        let cases: [(String, Tensor, Tensor, [Int], (Tensor, Tensor) -> Tensor)] = [
            ("P1", ridge.x0, Tensor((0..<20).map { 0.01 * sin(Double($0)) }), [200, 20], ridge.lower),
            ("P3", cleaning.x0, Tensor((0..<10).map { 0.1 * cos(Double($0)) }), [100, 10], cleaning.lower),
        ]
        for (name, x, w, matrix, lower) in cases {
            let direction = Tensor((0..<w.count).map { cos(0.7 * Double($0)) })
            let program = stage(shapes: [x.shape, w.shape, w.shape]) { a in hvp(at: a[1], direction: a[2]) { y in lower(a[0], y) } }
            let optimized = program.optimized()
            if name == "P1" { XCTAssertEqual(counts(optimized, matrix: matrix).readsOfMatrix, 0, "\(optimized)") }
            let eager = hvp(at: w, direction: direction) { y in lower(x, y) }
            XCTAssertLessThanOrEqual(relativeError(optimized.outputs(at: [x, w, direction])[0], eager), 1e-12, name)
        }
    }
}
