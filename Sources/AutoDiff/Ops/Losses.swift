// Softmax, log-softmax and the classification losses, composed from differentiable ops (so they are
// differentiable to any order), plus element-wise maximum and minimum.

/// `softmax(x)ᵢ = exp(xᵢ − logΣⱼexp(xⱼ))` along `axis` (default: the last), stable for large inputs.
///
/// - Precondition: `axis` is an axis with a non-zero extent.
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    exp(logSoftmax(x, alongAxis: axis))
}

/// `log softmax(x) = x − logΣexp(x)` along `axis` (default: the last), without forming the softmax.
///
/// - Precondition: `axis` is an axis with a non-zero extent.
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor {
    let a = require(try Shapes.normalize(axis: axis, of: x.shape, op: "logSoftmax"))
    return x - x.logSumExp(alongAxis: a).expandingShape(at: a)
}

/// The logistic loss `(1/B) Σ softplus(−yᵢ zᵢ)` of logits `z` against labels `y ∈ {−1, +1}`.
///
/// - Precondition: `logits` and `labels` have the same shape with at least one element.
public func logisticLoss(logits: Tensor, labels: Tensor) -> Tensor {
    engineCheck(
        logits.shape == labels.shape,
        "\(AutoDiffError.shapeMismatch(op: "logisticLoss", lhs: logits.shape, rhs: labels.shape, reason: "logits and labels must have the same shape"))")
    return softplus(-(labels * logits)).mean()
}

/// The cross-entropy `−(1/B) Σᵦ Σ꜀ p_{b,c} log softmax(z_b)_c` of logits `[B, C]` against one-hot or
/// probability labels `[B, C]`.
///
/// - Precondition: both are `[B, C]` of one shape, `B, C ≥ 1`.
public func crossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
    engineCheck(
        logits.rank == 2 && logits.shape == labels.shape && logits.count > 0,
        "\(AutoDiffError.shapeMismatch(op: "crossEntropy", lhs: logits.shape, rhs: labels.shape, reason: "logits and labels must both be [batch, classes]"))")
    return -(labels * logSoftmax(logits, alongAxis: 1)).sum() / Double(logits.shape[0])
}

/// The element-wise maximum with broadcasting. The derivative goes to `a` where `a ≥ b` and to `b`
/// where `b > a` (ties choose `a`), so at a tie one subgradient is taken, never their average.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    Application.binary(
        a, b,
        value: { Elementwise.zip($0, $1, op: "maximum") { Swift.max($0, $1) } },
        jvpA: { t, a, b, _ in t * firstIsMaximum(a, b) },
        jvpB: { t, a, b, _ in t * (1 - firstIsMaximum(a, b)) },
        vjpA: { g, a, b, _ in (g * firstIsMaximum(a, b)).sum(toShape: a.shape) },
        vjpB: { g, a, b, _ in (g * (1 - firstIsMaximum(a, b))).sum(toShape: b.shape) })
}

/// The constant mask `1[a ≥ b]` (broadcast): where `maximum` takes its first argument.
private func firstIsMaximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    Elementwise.zip(a.detached, b.detached, op: "maximum") { $0 >= $1 ? 1 : 0 }
}

/// The element-wise minimum with broadcasting: `−maximum(−a, −b)`, so ties choose `a`.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { -maximum(-a, -b) }
