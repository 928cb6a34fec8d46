import Foundation

// Element-wise functions a model needs beyond Unary.swift: log1p, expm1 and clamp, each one primitive.

/// `log(1 + x)` element-wise, accurate for small |x|. Derivative `1/(1 + x)`.
///
/// The result is NaN for `x < −1`, as `Foundation.log1p` is.
public func log1p(_ x: Tensor) -> Tensor { LogOnePlus()(x) }

/// The primitive behind `log1p(_:)`: `y = log(1 + x)`, `ẏ = ẋ/(1 + x)`, `x̄ = ȳ/(1 + x)`.
public struct LogOnePlus: UnaryPrimitive {
    /// The op (it has no attributes).
    public init() {}
    /// `"log1p"`.
    public var name: String { "log1p" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    /// `log1p` of every element.
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x) { Foundation.log1p($0) } }
    /// `ẏ = ẋ / (1 + x)`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t / (1 + x) }
    /// `x̄ = ȳ / (1 + x)`.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g / (1 + x) }
    /// `log1p(x)`.
    public func swiftSource(_ x: String) -> String { "log1p(\(x))" }
}

/// `eˣ − 1` element-wise, accurate for small |x|. Derivative `eˣ = y + 1`.
public func expm1(_ x: Tensor) -> Tensor { ExpMinusOne()(x) }

/// The primitive behind `expm1(_:)`: `y = eˣ − 1`, `ẏ = (y + 1)·ẋ`, `x̄ = (y + 1)·ȳ`.
public struct ExpMinusOne: UnaryPrimitive {
    /// The op (it has no attributes).
    public init() {}
    /// `"expm1"`.
    public var name: String { "expm1" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    /// `expm1` of every element.
    public func value(_ x: Tensor) -> Tensor { Elementwise.map(x) { Foundation.expm1($0) } }
    /// `ẏ = (y + 1) ẋ`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * (y + 1) }
    /// `x̄ = (y + 1) ȳ`.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * (y + 1) }
    /// `expm1(x)`.
    public func swiftSource(_ x: String) -> String { "expm1(\(x))" }
}

/// `min(max(x, lower), upper)` element-wise. Derivative: the constant mask `1[lower ≤ x ≤ upper]`
/// (at a bound the inside derivative 1 is taken), so second derivatives are zero.
///
/// Either bound may be infinite (`clamp(x, lower: 0, upper: .infinity)` is `relu`).
///
/// - Precondition: `lower ≤ upper` and neither is NaN.
public func clamp(_ x: Tensor, lower: Double, upper: Double) -> Tensor {
    engineCheck(lower <= upper, "\(AutoDiffError.invalidArgument(op: "clamp(lower: \(lower), upper: \(upper))", reason: "needs lower ≤ upper (and no NaN); the tensor's shape is \(x.shape)"))")
    return Clamp(lower: lower, upper: upper)(x)
}

/// The primitive behind `clamp(_:lower:upper:)`: `y = min(max(x, lower), upper)`,
/// `ẏ = 1[lower ≤ x ≤ upper]·ẋ`, `x̄ = 1[lower ≤ x ≤ upper]·ȳ`.
public struct Clamp: UnaryPrimitive {
    /// The lower bound.
    public var lower: Double
    /// The upper bound.
    public var upper: Double

    /// The clamp to `[lower, upper]` (checked by `clamp(_:lower:upper:)`).
    public init(lower: Double, upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    /// `"clamp"`.
    public var name: String { "clamp" }
    /// Batching: element-wise, so the op applies to the batched input as it is.
    public func applyBatched(_ inputs: [Tensor], isBatched: [Bool], batchSize: Int) -> Tensor { self(inputs[0]) }
    /// Every element clamped.
    public func value(_ x: Tensor) -> Tensor {
        let lower = lower, upper = upper
        return Elementwise.map(x) { Swift.min(Swift.max($0, lower), upper) }
    }
    /// `ẏ = mask · ẋ`.
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor { t * inside(x) }
    /// `x̄ = mask · ȳ`.
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor { g * inside(x) }
    /// `clamp(x, lower: …, upper: …)`.
    public func swiftSource(_ x: String) -> String {
        func literal(_ v: Double) -> String { v.isInfinite ? (v > 0 ? ".infinity" : "-.infinity") : "\(v)" }
        return "clamp(\(x), lower: \(literal(lower)), upper: \(literal(upper)))"
    }

    /// The constant mask `1[lower ≤ x ≤ upper]` (read from `x`'s elements, which stops with the
    /// concretization message when `x` is symbolic).
    private func inside(_ x: Tensor) -> Tensor {
        let lower = lower, upper = upper
        return Elementwise.map(Tensor(shape: x.shape, scalars: x.scalars, trace: nil)) { $0 >= lower && $0 <= upper ? 1 : 0 }
    }
}
