import _Differentiation

// The bridge between the Swift compiler's AD and the tape.
//
// A function written with `Tensor` ops is ordinary Swift, so the same function can be differentiated
// two ways: by the tape (`gradient(at:of:)`, `hvp`, the bilevel layer, which take it as a plain closure)
// and, when it is marked `@differentiable(reverse)`, by the compiler. The compiler's AD is first order
// here: it cannot differentiate its own derivatives, so second-order quantities (HVPs, mixed products,
// the unrolled and implicit hypergradients) always go through the tape.

/// `∇f(x)` computed by the Swift compiler's reverse-mode AD from the registered tensor-level rules.
///
/// The tape's `gradient(at:of:)` gives the same numbers; this form exists so compiler-differentiable
/// models can be timed and checked against it, and so code written for `_Differentiation` keeps working.
///
/// - Precondition: `f` returns one element.
public func compilerGradient(at x: Tensor, of f: @differentiable(reverse) (Tensor) -> Tensor) -> Tensor {
    let (value, pullback) = _Differentiation.valueWithPullback(at: x, of: f)
    engineCheck(value.count == 1, "\(AutoDiffError.nonScalarOutput(transform: "compilerGradient", shape: value.shape))")
    return conformed(pullback(Tensor(repeating: 1, shape: value.shape)), to: x.shape)
}

/// `(∇ₓf, ∇ᵧf)` computed by the compiler's AD, for a scalar `f(x, y)` such as a bilevel objective.
///
/// - Precondition: `f` returns one element.
public func compilerGradient(
    at x: Tensor, _ y: Tensor, of f: @differentiable(reverse) (Tensor, Tensor) -> Tensor
) -> (Tensor, Tensor) {
    let (value, pullback) = _Differentiation.valueWithPullback(at: x, y, of: f)
    engineCheck(value.count == 1, "\(AutoDiffError.nonScalarOutput(transform: "compilerGradient", shape: value.shape))")
    let (gx, gy) = pullback(Tensor(repeating: 1, shape: value.shape))
    return (conformed(gx, to: x.shape), conformed(gy, to: y.shape))
}
