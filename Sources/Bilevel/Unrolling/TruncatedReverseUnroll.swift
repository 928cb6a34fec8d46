/// Truncated reverse-mode unrolling (TRAD; Liu et al. 2021 (survey), eq. 20; Shaban et al. 2019): back-propagation through
/// only the last M inner steps, treating `s_{T−M}` as a constant:
///
///     ∇F(x) ≈ ∇ₓF(x, y_T) + Σ_{t=T−M+1..T} B_tᵀ A_{t+1}ᵀ ⋯ A_Tᵀ ∇ᵧF(x, y_T).
///
/// The first `T − M` steps run without recording, so only `M + 1` states are stored. `M = T` is exactly
/// `ReverseUnroll` (the same backward loop runs); smaller M trades bias (which vanishes geometrically when
/// Ψ is a contraction) for O(M·|s|) memory and M step VJPs (`counts.vjps == M`).
public struct TruncatedReverseUnroll: HypergradientMethod, Sendable {
    /// The number M of final inner steps differentiated through (1 ≤ M ≤ T).
    public var truncation: Int

    /// `"TRAD-M"`.
    public var name: String { "TRAD-\(truncation)" }

    /// Back-propagates through the last `truncation` inner steps (checked against T when run).
    public init(truncation: Int) { self.truncation = truncation }

    /// The truncated hypergradient (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidSteps` when `M < 1` or `M > T`, and everything `ReverseUnroll` throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try reverseUnrolledHypergradient(of: problem, at: x, from: y0, truncation: truncation, method: self)
    }
}
