/// Reverse-mode differentiation of the unrolled inner loop (RAD; Liu et al. 2021 (survey), eq. 17 and Alg. 3):
///
///     ∇F(x) ≈ ∇ₓF(x, y_T) + Σ_{t=1..T} B_tᵀ A_{t+1}ᵀ ⋯ A_Tᵀ ∇ᵧF(x, y_T),
///
/// computed backwards with `λ_T = ∇ᵧF`, `g += B_tᵀ λ_t`, `λ_{t−1} = A_tᵀ λ_t`, where `A_t = ∂Ψ/∂s` and
/// `B_t = ∂Ψ/∂x` at step t are applied by one VJP of the step each (reverse-over-reverse: a Hessian- and
/// mixed-vector product per step, no Hessian formed). It is the exact derivative of `x ↦ F(x, y_T(x))`.
///
/// Cost: T forward steps plus T step VJPs (`counts.vjps == T`), one upper gradient; memory O(T·|s|) for
/// the stored trajectory `s_0 … s_T`. Use it when T is moderate and the exact derivative of the finite
/// loop is wanted; see `TruncatedReverseUnroll` to bound memory and `ForwardUnroll` when x is small.
public struct ReverseUnroll: HypergradientMethod, Sendable {
    /// `"RAD"`.
    public var name: String { "RAD" }

    /// The full reverse unroll over `problem.innerSteps` steps.
    public init() {}

    /// `∇ₓF(x, y_T) + Σ_t B_tᵀ λ_t` through all T inner steps from `y0` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidSteps` (T < 1), `.nonFinite` naming the inner step,
    ///   `.shapeMismatch` when Ψ changes the state's shape.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try reverseUnrolledHypergradient(of: problem, at: x, from: y0, truncation: max(problem.innerSteps, 1), method: self)
    }
}
