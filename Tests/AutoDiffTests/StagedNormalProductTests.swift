import XCTest
@testable import AutoDiff
import Workloads

/// `fusingNormalProducts()` (run by `optimized()`): `Aᵀ(α (A v − b))` becomes one `NormalProduct` on
/// P2's staged gradient step and its VJP, only when the intermediates have no other use, and the
/// optimized programs agree with the eager engine.
final class StagedNormalProductTests: XCTestCase {
    private let ridge = RidgeWorkload(n: 1000, d: 100)

    /// P2's generic gradient step Ψ(w, x) = w − η ∇_w f(x, w), staged without optimization.
    private var step: Program {
        let ridge = ridge
        return stage(shapes: [[ridge.d], [ridge.d]]) { s in
            s[0] - ridge.eta * gradient(at: s[0]) { w in ridge.lower(s[1], w) }
        }
    }

    /// How many applications are a `NormalProduct`, and how many a `matmul` reading the `[n, d]` matrix A.
    private func counts(_ program: Program) -> (normalProducts: Int, matmulsOfA: Int) {
        var normal = 0, matmuls = 0
        for instruction in program.instructions {
            guard case let .apply(op, arguments) = instruction.operation else { continue }
            if op is NormalProduct { normal += 1 }
            if op is Matmul, arguments.contains(where: { program.instructions[$0].shape == [ridge.n, ridge.d] }) { matmuls += 1 }
        }
        return (normal, matmuls)
    }

    private func assertClose(_ actual: Tensor, _ expected: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, message, file: file, line: line)
        let error = (actual - expected).squaredNorm().scalar.squareRoot(), size = expected.squaredNorm().scalar.squareRoot()
        XCTAssertLessThanOrEqual(error, 1e-12 * size, "\(message): relative error \(error / size)", file: file, line: line)
    }

    func testRewriteFiresOnP2StepAndMatchesEager() {
        let raw = step, optimized = raw.optimized()
        XCTAssertEqual(counts(raw).normalProducts, 0)
        XCTAssertEqual(counts(raw).matmulsOfA, 2, "the staged step reads A twice:\n\(raw.optimized())")
        // The fused product is then rewritten to `G v − c` by `usingGramMatrices()` (A is a constant):
        // A is not read at all, which only happens after this rewrite fired.
        XCTAssertEqual(counts(optimized).normalProducts, 0, "\(optimized)")
        XCTAssertEqual(counts(optimized).matmulsOfA, 0, "\(optimized)")
        let w = Tensor((0..<ridge.d).map { 0.01 * sin(Double($0)) }), x = ridge.x0
        let eager = w - ridge.eta * gradient(at: w) { w in ridge.lower(x, w) }
        assertClose(optimized(w, x), eager, "optimized step")
    }

    func testRewriteFiresOnP2StepVJPAndMatchesEager() {
        let raw = step.vjp(), optimized = raw.optimized()
        XCTAssertGreaterThanOrEqual(counts(raw).matmulsOfA, 2)
        XCTAssertEqual(counts(optimized).normalProducts, 0, "AᵀA w̄ is then G w̄ (usingGramMatrices()): \(optimized)")
        XCTAssertEqual(counts(optimized).matmulsOfA, 0, "\(optimized)")
        let w = Tensor((0..<ridge.d).map { 0.01 * sin(Double($0)) }), x = ridge.x0
        let adjoint = Tensor((0..<ridge.d).map { cos(0.3 * Double($0)) })
        let eager = vjp(at: w, x) { w, x in w - self.ridge.eta * gradient(at: w) { w in self.ridge.lower(x, w) } }.pullback(adjoint)
        let staged = optimized.outputs(at: [w, x, adjoint])
        assertClose(staged[0], eager.0, "VJP in w")
        assertClose(staged[1], eager.1, "VJP in x")
    }

    func testRewriteSkipsAnIntermediateWithAnotherUse() {
        let (a, b) = (ridge.a, ridge.b)
        let shared = stage(shape: [ridge.d]) { w in
            let residual = matmul(a, w) - b
            return matmul(residual, a) + residual.sum()
        }.optimized()
        XCTAssertEqual(counts(shared).normalProducts, 0, "A w − b is also summed:\n\(shared)")
        XCTAssertEqual(counts(shared).matmulsOfA, 2)
        let alone = stage(shape: [ridge.d]) { w in matmul(matmul(a, w) - b, a) + 1 }.optimized()
        XCTAssertEqual(counts(alone).normalProducts, 0, "fused, then G v − c (usingGramMatrices()): \(alone)")
        XCTAssertEqual(counts(alone).matmulsOfA, 0, "\(alone)")
        let w = Tensor((0..<ridge.d).map { 0.01 * cos(Double($0)) })
        assertClose(alone(w), matmul(matmul(a, w) - b, a) + 1, "vector–matrix form")
        let residual = matmul(a, w) - b
        assertClose(shared(w), matmul(residual, a) + residual.sum(), "skipped rewrite")
    }

    func testStagedReverseUnrollOverTwentyStepsMatchesReferenceLoop() {
        let x = ridge.x0, steps = 20, raw = step
        let optimizedStep = raw.optimized(), stepVJP = optimizedStep.vjp().optimized()
        XCTAssertEqual(counts(stepVJP).matmulsOfA, 0, "\(stepVJP)")
        let ridge = ridge
        let upperGradient = stage(shape: [ridge.d]) { w in gradient(at: w) { w in ridge.upper(x, w) } }.optimized()
        let states = optimizedStep.scan(from: Tensor(zeros: [ridge.d]), parameters: [x], steps: steps)
        var adjoint = upperGradient(states[steps])
        let hypergradient = (0..<steps).reversed().reduce(Tensor(zeros: [ridge.d])) { sum, t in
            let adjoints = stepVJP.outputs(at: [states[t], x, adjoint])
            adjoint = adjoints[0]
            return sum + adjoints[1]
        }
        assertClose(hypergradient, ridge.unrolledHypergradient(x, steps: steps), "staged RAD, T = 20")
        let rawStates = raw.scan(from: Tensor(zeros: [ridge.d]), parameters: [x], steps: steps)
        assertClose(states[steps], rawStates[steps], "forward sweep against the unoptimized step")
    }
}
