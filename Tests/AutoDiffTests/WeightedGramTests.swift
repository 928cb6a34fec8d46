import XCTest
@testable import AutoDiff
import Workloads

/// `usingWeightedGramMatrices()` (run by `specialized(binding:)`): `Xᵀ(D ⊙ (X v))` with constant `X`
/// `[n, d]` and `D` becomes `H v`, `H = Xᵀ diag(D) X` formed once, when `d < 2n`. The rewritten programs
/// equal the unrewritten ones to 1e-12 (relative) and P3's Hessian in closed form; the rewrite leaves
/// alone what is not constant or too wide.
final class WeightedGramTests: XCTestCase {
    /// A tensor of `shape` with deterministic pseudo-random entries in (−1, 1).
    private func random(_ shape: [Int], seed: Int) -> Tensor {
        Tensor(shape: shape) { i in sin(Double(seed * 7919 + i) * 12.9898) }
    }

    private func relativeError(_ actual: Tensor, _ expected: Tensor) -> Double {
        (actual - expected).squaredNorm().scalar.squareRoot() / expected.squaredNorm().scalar.squareRoot()
    }

    /// How many constants of `shape` the program holds.
    private func constants(_ program: Program, shape: [Int]) -> Int {
        program.instructions.filter { instruction in
            if case .constant = instruction.operation { return instruction.shape == shape }
            return false
        }.count
    }

    /// The staged P3 lower HVP `(x, w, v) ↦ ∇²_ww f(x, w) v`, optimized (the program the staged oracle replays).
    private func cleaningHVP(_ p3: HyperCleaningWorkload) -> Program {
        stage(shapes: [[p3.n], [p3.d], [p3.d]]) { a in [hvp(at: a[1], direction: a[2]) { w in p3.lower(a[0], w) }] }.optimized()
    }

    /// P3's lower Hessian in closed form: `f = (1/n) Σ σ(xᵢ) softplus(−yᵢ Xᵢ·w) + 1e-3 ‖w‖²`, so
    /// `∇²f = (1/n) Σ σ(xᵢ) pᵢ(1 − pᵢ) XᵢXᵢᵀ + 2e-3 I` with `pᵢ = σ(−yᵢ Xᵢ·w)`, entry by entry.
    private func closedFormHessian(_ p3: HyperCleaningWorkload, x: Tensor, w: Tensor) -> Tensor {
        let (n, d) = (p3.n, p3.d), rows = p3.xtr.scalars
        func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
        let weights = (0..<n).map { i -> Double in
            let margin = (0..<d).reduce(0.0) { $0 + rows[i * d + $1] * w.scalars[$1] }
            let p = sigmoid(-p3.ytr.scalars[i] * margin)
            return sigmoid(x.scalars[i]) * p * (1 - p) / Double(n)
        }
        return Tensor(shape: [d, d]) { entry in
            let (j, k) = (entry / d, entry % d)
            return (0..<n).reduce(j == k ? 2e-3 : 0) { $0 + weights[$1] * rows[$1 * d + j] * rows[$1 * d + k] }
        }
    }

    /// P3 at fixed `(x, w)`: the specialized HVP reads one `[d, d]` matrix and no `[n, d]` one, and equals
    /// both the unspecialized program and the closed-form Hessian times `v` to 1e-12.
    private func assertP3HVPBecomesWeightedGram(n: Int, d: Int) {
        let p3 = HyperCleaningWorkload(n: n, m: 10, d: d), program = cleaningHVP(p3)
        let x = random([n], seed: 1), w = random([d], seed: 2)
        let specialized = program.specialized(binding: [0: x, 1: w])
        XCTAssertEqual(constants(specialized, shape: [n, d]), 0, "X is no longer read: \(specialized)")
        XCTAssertEqual(constants(specialized, shape: [d, d]), 1, "one H: \(specialized)")
        let hessian = closedFormHessian(p3, x: x, w: w)
        for seed in 0..<3 {
            let v = random([d], seed: 10 + seed), actual = specialized(v)
            XCTAssertLessThanOrEqual(relativeError(actual, program.outputs(at: [x, w, v])[0]), 1e-12, "\(n)x\(d) seed \(seed)")
            let expected = matmul(hessian, v.reshaped(to: [d, 1])).reshaped(to: [d])
            XCTAssertLessThanOrEqual(relativeError(actual, expected), 1e-12, "\(n)x\(d) closed form, seed \(seed)")
        }
    }

    func testP3SpecializedHVPIsOneWeightedGramProductAtSmallSize() { assertP3HVPBecomesWeightedGram(n: 40, d: 8) }

    func testP3SpecializedHVPIsOneWeightedGramProductAtWorkloadSize() { assertP3HVPBecomesWeightedGram(n: 500, d: 50) }

    /// With `x` left free, `D = σ(x) ⊙ p(1 − p)/n` is not constant: X stays, and nothing changes.
    func testDoesNotFireWhenTheWeightsAreNotConstant() {
        let p3 = HyperCleaningWorkload(n: 40, m: 10, d: 8), program = cleaningHVP(p3)
        let w = random([p3.d], seed: 3), x = random([p3.n], seed: 4), v = random([p3.d], seed: 5)
        let specialized = program.specialized(binding: [1: w])
        XCTAssertEqual(constants(specialized, shape: [p3.d, p3.d]), 0, "\(specialized)")
        XCTAssertGreaterThan(constants(specialized, shape: [p3.n, p3.d]), 0, "\(specialized)")
        XCTAssertEqual(program.usingWeightedGramMatrices().description, program.eliminatingDeadCode().description)
        XCTAssertLessThanOrEqual(relativeError(specialized.outputs(at: [x, v])[0], program.outputs(at: [x, w, v])[0]), 1e-13)
    }

    /// `d ≥ 2n`: `H v` would read `d²` numbers, at least the `2 n d` of the two passes over X: not rewritten.
    func testDoesNotFireWhenTheMatrixIsTooWide() {
        for (n, d) in [(10, 20), (10, 25)] {
            let p3 = HyperCleaningWorkload(n: n, m: 5, d: d), program = cleaningHVP(p3)
            let x = random([n], seed: 6), w = random([d], seed: 7), v = random([d], seed: 8)
            let specialized = program.specialized(binding: [0: x, 1: w])
            XCTAssertEqual(constants(specialized, shape: [d, d]), 0, "\(n)x\(d): \(specialized)")
            XCTAssertEqual(constants(specialized, shape: [n, d]), 1, "\(n)x\(d): \(specialized)")
            XCTAssertLessThanOrEqual(relativeError(specialized(v), program.outputs(at: [x, w, v])[0]), 1e-13)
        }
    }

    /// The forms written out (not fused): `Xᵀ(s D ⊙ (X v))/c` and the row layout `(−D ⊙ (X v))ᵀ X`, with weights
    /// of both signs (the GEMM path) and nonnegative ones (the Gram kernel on `√D`-scaled rows).
    func testWrittenOutChainsInBothLayoutsAndSigns() {
        let (n, d) = (30, 6), x = random([n, d], seed: 9)
        let mixed = random([n], seed: 10), nonnegative = Tensor(shape: [n]) { i in mixed.scalars[i] * mixed.scalars[i] }
        for weights in [mixed, nonnegative] {
            let column = stage(shapes: [[d]]) { s in
                let product = matmul(x, s[0].reshaped(to: [d, 1])).reshaped(to: [n])
                let weighted = matmul((weights * product).reshaped(to: [n, 1]), Tensor(shape: [1, 1], scalars: [0.25]))
                return matmul(x, weighted, transposeA: true, transposeB: false) / 3
            }
            let row = stage(shapes: [[d]], outputs: { s in
                let product = matmul(x, s[0].reshaped(to: [d, 1])).reshaped(to: [1, n])
                return [matmul(-(product * weights.reshaped(to: [1, n])), x), product.sum()]
            })
            for (name, program, dependentOutputs) in [("column", column, 1), ("row", row, 2)] {
                let rewritten = program.usingWeightedGramMatrices()
                // The row layout's X v is also summed: left alone (it would still read X).
                let fires = dependentOutputs == 1
                XCTAssertEqual(constants(rewritten, shape: [d, d]), fires ? 1 : 0, "\(name): \(rewritten)")
                XCTAssertEqual(constants(rewritten, shape: [n, d]) == 0, fires, "\(name): \(rewritten)")
                let v = random([d], seed: 11)
                for (actual, expected) in zip(rewritten.outputs(at: [v]), program.outputs(at: [v])) {
                    XCTAssertLessThanOrEqual(relativeError(actual, expected), 1e-12, name)
                }
            }
            let rowAlone = stage(shapes: [[d]]) { s in
                let product = matmul(x, s[0].reshaped(to: [d, 1])).reshaped(to: [1, n])
                return matmul(-(product * weights.reshaped(to: [1, n])), x)
            }.optimized()
            let rewritten = rowAlone.usingWeightedGramMatrices(), v = random([d], seed: 12)
            XCTAssertEqual(constants(rewritten, shape: [d, d]), 1, "row, fused: \(rewritten)")
            XCTAssertEqual(rewritten(v).shape, [1, d])
            XCTAssertLessThanOrEqual(relativeError(rewritten(v), rowAlone(v)), 1e-12, "row, fused")
        }
    }
}
