import Foundation
import XCTest
@testable import AutoDiff

/// Every public op through `gradcheck` (relative error ≤ 1e-6), at first order and at second order:
/// the gradient of a weighted sum of the op's output is checked again (so each VJP rule is itself
/// correctly differentiable), and so is the JVP tangent (so each JVP rule is).
final class OpGradcheckTests: XCTestCase {
    /// A deterministic, non-trivial input of the given shape, in about [−0.9, 0.9] shifted by `offset`.
    static func input(_ shape: [Int], offset: Double = 0) -> Tensor {
        Tensor(shape: shape) { i in 0.8 * Foundation.sin(1.3 * Double(i) + 0.4 + offset) + 0.1 * offset }
    }

    /// An input in [0.5, 2].
    static func positive(_ shape: [Int], offset: Double = 0) -> Tensor {
        Tensor(shape: shape) { i in 1.25 + 0.75 * Foundation.sin(0.9 * Double(i) + 0.3 + offset) }
    }

    /// A symmetric positive definite matrix.
    static let spd = Tensor(shape: [3, 3], scalars: [4, 1, -0.5, 1, 3, 0.25, -0.5, 0.25, 2.5])

    typealias Unary = (name: String, x: Tensor, f: @Sendable (Tensor) -> Tensor)

    static let unaryCases: [Unary] = [
        ("negate", input([2, 3]), { -$0 }),
        ("exp", input([2, 3]), { exp($0) }),
        ("log", positive([2, 3]), { log($0) }),
        ("sqrt", positive([2, 3]), { sqrt($0) }),
        ("pow-double", positive([4]), { pow($0, 2.5) }),
        ("tanh", input([5]), { tanh($0) }),
        ("sigmoid", input([5]), { sigmoid(3 * $0) }),
        ("softplus", input([5]), { softplus(3 * $0) }),
        ("relu", input([6]), { relu($0) }),
        ("sin", input([5]), { sin($0) }),
        ("cos", input([5]), { cos($0) }),
        ("abs", input([6]), { abs($0) }),
        ("sign", input([6]), { sign($0) * $0 }),
        ("sum", input([2, 3]), { ($0 * $0).sum() }),
        ("mean", input([2, 3]), { ($0 * $0).mean() }),
        ("sum-axis0", input([2, 3]), { ($0 * $0).sum(alongAxis: 0) }),
        ("sum-axis1", input([2, 3]), { ($0 * $0).sum(alongAxis: 1) }),
        ("mean-axis0", input([2, 3]), { ($0 * $0).mean(alongAxis: 0) }),
        ("mean-axis-last", input([2, 3]), { ($0 * $0).mean(alongAxis: -1) }),
        ("sum-to-shape", input([2, 3]), { ($0 * $0).sum(toShape: [1, 3]) }),
        ("broadcast", input([3]), { $0.broadcast(to: [2, 3]) * input([2, 3]) }),
        ("transposed", input([2, 3]), { $0.transposed * input([3, 2]) }),
        ("squaredNorm", input([4]), { $0.squaredNorm() }),
        ("logSumExp", input([2, 3]), { $0.logSumExp() }),
        ("logSumExp-axis", input([2, 3]), { $0.logSumExp(alongAxis: 1) }),
        ("softmax", input([2, 3]), { softmax($0) }),
        ("logSoftmax-axis0", input([2, 3]), { logSoftmax($0, alongAxis: 0) }),
        ("logisticLoss", input([4]), { logisticLoss(logits: $0, labels: Tensor([1, -1, -1, 1])) }),
        ("crossEntropy", input([2, 3]), { crossEntropy(logits: $0, labels: Tensor(shape: [2, 3], scalars: [0, 1, 0, 0.2, 0.3, 0.5])) }),
        ("reshape", input([2, 3]), { $0.reshaped(to: [3, 2]) * input([3, 2]) }),
        ("expandingShape", input([3]), { $0.expandingShape(at: 0) * input([2, 3]) }),
        ("index", input([3, 2]), { $0[1] * $0[2] }),
        ("range", input([4, 2]), { $0[1..<3] * $0[2..<4] }),
        ("slice-axis1", input([2, 4]), { $0.slice(alongAxis: 1, 1..<3) * $0.slice(alongAxis: 1, 2..<4) }),
        ("embedded", input([2, 2]), { $0.embedded(in: [2, 4], alongAxis: 1, at: 1) * input([2, 4]) }),
        ("concatenate-axis0", input([2, 2]), { concatenate([$0, $0 * $0], alongAxis: 0) }),
        ("concatenate-axis1", input([2, 2]), { concatenate([$0 * $0, $0, sin($0)], alongAxis: 1) }),
        ("solve-b", input([3]), { solve(spd, $0 * $0) }),
        ("solve-a", input([3, 3]), { solve(spd + 0.3 * $0, Tensor([1, -1, 2])) }),
        ("choleskySolve", input([3, 3]), { m in choleskySolve(spd + 0.2 * (m + m.transposed), Tensor([1, 2, 0.5]))! }),
        ("dot-rank2", input([2, 3]), { dot($0, sin($0)) }),
    ]

    typealias Binary = (name: String, x: Tensor, y: Tensor, f: @Sendable (Tensor, Tensor) -> Tensor)

    static let binaryCases: [Binary] = [
        ("add", input([2, 3]), input([2, 3], offset: 1), { $0 + $1 }),
        ("subtract-scalar", input([2, 3]), input([], offset: 1), { $0 - $1 }),
        ("multiply-row", input([2, 3]), input([3], offset: 1), { $0 * $1 }),
        ("multiply-scalar-left", input([]), input([2, 3], offset: 1), { $0 * $1 }),
        ("divide-column", input([2, 3]), positive([2, 1]), { $0 / $1 }),
        ("divide-row-left", positive([3]), positive([2, 3], offset: 1), { $0 / $1 }),
        ("double-overloads", input([3]), input([3], offset: 2), { 2.0 * $0 - $1 / 4.0 + 1.5 - (0.5 - $0) * 3.0 }),
        ("pow-tensor", positive([3]), input([3], offset: 1), { pow($0, $1) }),
        ("matmul", input([2, 3]), input([3, 4], offset: 1), { matmul($0, $1) }),
        ("matvec", input([2, 3]), input([3], offset: 1), { matmul($0, $1) }),
        ("vecmat", input([2]), input([2, 3], offset: 1), { matmul($0, $1) }),
        ("matmul-tA", input([3, 2]), input([3, 4], offset: 1), { matmul($0, $1, transposeA: true, transposeB: false) }),
        ("matmul-tB", input([2, 3]), input([4, 3], offset: 1), { matmul($0, $1, transposeA: false, transposeB: true) }),
        ("matmul-tAtB", input([3, 2]), input([4, 3], offset: 1), { matmul($0, $1, transposeA: true, transposeB: true) }),
        ("dot", input([4]), input([4], offset: 1), { dot($0, $1) }),
        ("maximum", input([5]), input([5], offset: 2), { maximum($0, $1) }),
        ("minimum-broadcast", input([2, 3]), input([3], offset: 2), { minimum($0, $1) }),
    ]

    /// Deterministic weights of the output's shape, to make any output a scalar.
    static func weights(like y: Tensor) -> Tensor { input(y.shape, offset: 3) }

    func testFirstOrderOfEveryUnaryOp() { GradcheckAtEveryOrder.firstOrder(Self.unaryCases, []) }

    func testFirstOrderOfEveryBinaryOp() { GradcheckAtEveryOrder.firstOrder([], Self.binaryCases) }

    /// `x ↦ ∇ₓ⟨w, f(x)⟩` runs every VJP rule as ops; its Jacobian (the Hessian of ⟨w, f⟩) is checked.
    func testVJPRulesAreDifferentiable() { GradcheckAtEveryOrder.vjpRules(Self.unaryCases, Self.binaryCases) }

    /// `x ↦ f'(x)·v` runs every JVP rule as ops; its Jacobian is checked.
    func testJVPRulesAreDifferentiable() { GradcheckAtEveryOrder.jvpRules(Self.unaryCases, Self.binaryCases) }

    /// `sign` is piecewise constant: its derivative is exactly zero.
    func testSignHasZeroDerivative() {
        let x = Self.input([5])
        XCTAssertEqual(gradient(at: x) { sign($0).sum() }.scalars, [0, 0, 0, 0, 0])
        XCTAssertEqual(jvp(at: x, direction: Self.positive([5]), of: sign).tangent.scalars, [0, 0, 0, 0, 0])
    }

    /// Softmax rows sum to one and survive huge logits (to the rounding of logits near 1000, ~1e-13).
    func testSoftmaxIsStable() {
        let s = softmax(Tensor(shape: [2, 2], scalars: [1000, 1001, -1000, -1000]))
        XCTAssertEqual(s.scalars[0] + s.scalars[1], 1, accuracy: 1e-12)
        XCTAssertEqual(s.scalars[1], 1 / (1 + Foundation.exp(-1.0)), accuracy: 1e-12)
        XCTAssertEqual(s.scalars[2], 0.5, accuracy: 1e-12)
        XCTAssertFalse(s.hasNonFinite)
    }
}
