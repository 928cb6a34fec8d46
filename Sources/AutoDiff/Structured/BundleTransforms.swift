// The transforms over bundles of tensors: each tracks the bundle's leaves directly (no flattening, no
// copy) through the many-argument transform and returns derivatives with the bundle's structure.

/// The value of a scalar `f` at the bundle `x` and its gradient, a bundle of `x`'s type whose leaf i is
/// `∂f/∂(leaf i)` (reverse mode, one sweep).
///
/// - Precondition: `f` returns one element.
public func valueWithGradient<P: TensorBundle>(at x: P, of f: (P) -> Tensor) -> (value: Tensor, gradient: P) {
    let (value, gradients) = valueWithGradient(at: x.tensors) { f(x.replacingTensors(with: $0)) }
    return (value, x.replacingTensors(with: gradients))
}

/// The gradient of a scalar `f` at the bundle `x`, as a bundle of `x`'s type. Nestable like
/// `gradient(at:of:)` on a tensor.
///
/// - Precondition: `f` returns one element.
public func gradient<P: TensorBundle>(at x: P, of f: (P) -> Tensor) -> P {
    valueWithGradient(at: x, of: f).gradient
}

/// Both partial gradients `(∇ₓf, ∇ᵧf)` of a scalar `f(x, y)` of two bundles, each with its argument's type.
///
/// - Precondition: `f` returns one element.
public func gradient<P: TensorBundle, Q: TensorBundle>(at x: P, _ y: Q, of f: (P, Q) -> Tensor) -> (P, Q) {
    let xs = x.tensors, ys = y.tensors
    let gradients = valueWithGradient(at: xs + ys) { leaves in
        f(x.replacingTensors(with: Array(leaves[..<xs.count])), y.replacingTensors(with: Array(leaves[xs.count...])))
    }.gradients
    return (x.replacingTensors(with: Array(gradients[..<xs.count])), y.replacingTensors(with: Array(gradients[xs.count...])))
}

/// The value of `f` at the bundle `x` and its pullback `v ↦ (∂f/∂x)ᵀ v`, a bundle of `x`'s type.
///
/// - Precondition (pullback): `v` has the output's shape.
public func vjp<P: TensorBundle>(at x: P, of f: (P) -> Tensor) -> (value: Tensor, pullback: (Tensor) -> P) {
    let (value, pullback) = valueWithPullback(at: x.tensors) { f(x.replacingTensors(with: $0)) }
    return (value, { x.replacingTensors(with: pullback($0)) })
}

/// The value of `f` at the bundle `x` and the directional derivative `(∂f/∂x) v` along the bundle `v`
/// (forward mode).
///
/// - Precondition: `direction` has `x`'s structure (leaf shapes).
public func jvp<P: TensorBundle>(at x: P, direction: P, of f: (P) -> Tensor) -> (value: Tensor, tangent: Tensor) {
    let r = valueWithDifferential(at: x.tensors, directions: direction.tensors) { f(x.replacingTensors(with: $0)) }
    return (r.value, r.differential)
}

/// The Hessian-vector product `∇²f(x) · v` of a scalar `f` of the bundle `x`, along the bundle `v`,
/// as a bundle of `x`'s type (the Hessian over all leaves jointly, cross-leaf blocks included).
///
/// - Precondition: `f` returns one element; `direction` has `x`'s structure.
public func hvp<P: TensorBundle>(
    at x: P, direction v: P, mode: HVPMode = .reverseOverReverse, of f: (P) -> Tensor
) -> P {
    x.replacingTensors(with: hvp(at: x.tensors, directions: v.tensors, mode: mode) { f(x.replacingTensors(with: $0)) })
}
