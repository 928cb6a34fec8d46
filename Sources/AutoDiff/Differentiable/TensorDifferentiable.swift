import _Differentiation

extension Tensor: Equatable {
    /// Equal shapes and equal elements (no tolerance; see `isApproximatelyEqual(to:tolerance:)`).
    public static func == (a: Tensor, b: Tensor) -> Bool { a.shape == b.shape && a.scalars == b.scalars }
}

extension Tensor: AdditiveArithmetic {
    /// The shape-less zero, a rank-0 `0.0`: `+` and `−` broadcast it, so `zero + t == t` for every
    /// shape. The compiler's AD uses it for tangents that no path reaches.
    public static var zero: Tensor { Tensor(0) }
}

extension Tensor: Differentiable {
    /// Tangents of tensors are tensors of the same shape (or the shape-less `zero`).
    public typealias TangentVector = Tensor

    /// `self += offset` (broadcasting a shape-less zero).
    public mutating func move(by offset: Tensor) { self = self + offset }
}

/// The value and pullback of a one-tensor op, taken from the engine's tape: the rule the compiler
/// uses is the op's own VJP rule, so it lives in one place.
@inline(__always)
func taped(_ x: Tensor, _ op: (Tensor) -> Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) {
    let (value, pullback) = vjp(at: x, of: op)
    return (value, { pullback(conformed($0, to: value.shape)) })
}

/// The value and pullback of a two-tensor op, from the engine's tape.
@inline(__always)
func taped(
    _ a: Tensor, _ b: Tensor, _ op: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) {
    let (value, pullback) = vjp(at: a, b, of: op)
    return (value, { pullback(conformed($0, to: value.shape)) })
}

/// A cotangent from the compiler, given the output's shape: the shape-less `zero` becomes zeros of
/// `shape`; anything else must already have it.
@inline(__always)
func conformed(_ cotangent: Tensor, to shape: [Int]) -> Tensor {
    cotangent.shape == shape ? cotangent : cotangent.broadcast(to: shape)
}
