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
    Maximum()(a, b)
}

/// The primitive behind `maximum(_:_:)`: with the constant mask `m = 1[a ≥ b]`, `ẏ = m ȧ + (1 − m) ḃ`,
/// `ā = m ȳ`, `b̄ = (1 − m) ȳ` (each summed back to its shape).
public struct Maximum: BinaryPrimitive {
    public var name: String { "maximum" }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "maximum") }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor {
        Elementwise.zip(a, b, op: "maximum") { Swift.max($0, $1) }
    }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { t * FirstIsMaximum()(a.detached, b.detached) }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        t * (1 - FirstIsMaximum()(a.detached, b.detached))
    }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        (g * FirstIsMaximum()(a.detached, b.detached)).sum(toShape: a.shape)
    }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        (g * (1 - FirstIsMaximum()(a.detached, b.detached))).sum(toShape: b.shape)
    }
    public func swiftSource(_ a: String, _ b: String) -> String { "maximum(\(a), \(b))" }
}

/// The constant mask `1[a ≥ b]` (broadcast): where `maximum` takes its first argument. Piecewise
/// constant, applied to detached inputs; its rules are 0.
public struct FirstIsMaximum: BinaryPrimitive {
    /// The mask op (it has no attributes).
    public init() {}
    public var name: String { "firstIsMaximum" }
    /// Batching: broadcasting element-wise (`Batching.broadcasting`).
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor {
        Batching.broadcasting(self, inputs, isBatched: isBatched)
    }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { broadcastShape(a, b, op: "maximum") }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor {
        Elementwise.zip(a, b, op: "maximum") { $0 >= $1 ? 1 : 0 }
    }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { y.constantZeros }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { y.constantZeros }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { a.constantZeros }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { b.constantZeros }
    public func swiftSource(_ a: String, _ b: String) -> String { "FirstIsMaximum()(\(a), \(b))" }
}

/// The element-wise minimum with broadcasting: `−maximum(−a, −b)`, so ties choose `a`.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { -maximum(-a, -b) }
