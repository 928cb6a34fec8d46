import Foundation

/// BVFIM, the bi-level value-function-based interior-point method (Liu et al. 2021 (survey), eqs. 33–35 and
/// Table 4; Liu et al. 2021 (BVFIM); Zhang et al. 2024, eqs. 14–15). The lower level is replaced by the constraint that y does no worse
/// than a regularised lower value function, and that constraint is moved into the objective by a log
/// barrier:
///
///     ψ_μ(x)   = min_y f(x, y) + (μ₁/2)‖y‖² + μ₂                                          (eq. 34)
///     φ(x)     = min_y F(x, y) + (θ/2)‖y‖² − τ ln(ψ_μ(x) − f(x, y))                       (eq. 35)
///     ∇φ(x)    = ∇ₓF(x, y_τ) + τ/(ψ_μ(x) − f(x, y_τ)) · (∇ₓf(x, y_τ) − ∇ₓf(x, z_μ)),
///
/// with z_μ the minimiser of eq. 34 and y_τ that of eq. 35 (Danskin's theorem on both; μ₁, μ₂ do not
/// depend on x). As (μ₁, μ₂, θ, τ) → 0 with τ/μ₂ → ∞ and τμ₁/μ₂ → 0, φ and ∇φ tend to the bilevel
/// objective and its hypergradient: the barrier multiplier τ/(ψ − f) plays the part of the inverse
/// Hessian, so no Hessian- or Jacobian-vector product is ever formed. `init(scale:)` follows the path
/// μ₁ = μ₂ = s², θ = τ = s, on which every one of those error terms is O(s).
///
/// Computation: Q₁ gradient steps `z ← z − η (∇ᵧf(x, z) + μ₁ z)` from `y0` (stopping early when that
/// gradient's norm is ≤ `tolerance`), then from `y = z_μ` — strictly feasible, `ψ − f(x, z_μ) = μ₁‖z_μ‖²/2 + μ₂`
/// — at most Q₂ gradient steps on eq. 35 with Barzilai–Borwein step lengths and a nonmonotone backtracking
/// (Armijo) test that never leaves the barrier's domain, stopping when `‖∇ᵧ‖ ≤ tolerance`. `solverIterations` and `residual` report Q₂ used and the final
/// `‖∇ᵧ‖`; `converged` is false when the barrier loop missed the tolerance.
///
/// Cost (Table 4): Q₁ + 2Q₂ + 3 gradients, time O(m + n(Q₁ + Q₂)) for x ∈ ℝᵐ, y ∈ ℝⁿ, memory O(m + n). Use
/// it when the lower level may have several minimisers or no usable Hessian; run it in the outer loop with
/// decreasing parameters (`minimize(…, methodAtStep: { k in BVFIM(scale: s₀ · 0.5^k) })`). A constrained
/// lower level is rejected.
public struct BVFIM: HypergradientMethod, Sendable {
    /// μ₁ > 0, the ridge of the regularised value function (eq. 34).
    public var lowerRegularization: Double
    /// μ₂ > 0, the shift that keeps the barrier's domain open at the lower solution (eq. 34).
    public var valueShift: Double
    /// θ > 0, the ridge of the barrier problem (eq. 35).
    public var upperRegularization: Double
    /// τ > 0, the barrier weight (eq. 35).
    public var barrier: Double
    /// Q₁, the step budget of the value-function loop, or `nil` for `problem.innerSteps`.
    public var lowerIterations: Int?
    /// Q₂, the step budget of the barrier loop.
    public var barrierIterations: Int
    /// The gradient step η of the value-function loop, or `nil` for the problem's `.gradientDescent` step.
    public var innerStep: Double?
    /// The gradient norm at which both loops stop early.
    public var tolerance: Double

    /// `"BVFIM"`.
    public var name: String { "BVFIM" }

    /// BVFIM with the parameters (μ₁, μ₂, θ, τ) of eqs. 34–35 (see the type's documentation).
    public init(
        lowerRegularization: Double, valueShift: Double, upperRegularization: Double, barrier: Double,
        lowerIterations: Int? = nil, barrierIterations: Int = 1000, innerStep: Double? = nil, tolerance: Double = 1e-10
    ) {
        self.lowerRegularization = lowerRegularization
        self.valueShift = valueShift
        self.upperRegularization = upperRegularization
        self.barrier = barrier
        self.lowerIterations = lowerIterations
        self.barrierIterations = barrierIterations
        self.innerStep = innerStep
        self.tolerance = tolerance
    }

    /// BVFIM on the parameter path μ₁ = μ₂ = s², θ = τ = s (every error term O(s)).
    public init(scale s: Double, lowerIterations: Int? = nil, barrierIterations: Int = 1000, innerStep: Double? = nil, tolerance: Double = 1e-10) {
        self.init(
            lowerRegularization: s * s, valueShift: s * s, upperRegularization: s, barrier: s,
            lowerIterations: lowerIterations, barrierIterations: barrierIterations, innerStep: innerStep, tolerance: tolerance)
    }

    /// `∇φ(x)` of eq. 35 (see the type's documentation); `innerSolution` is the barrier minimiser y_τ.
    ///
    /// - Throws: `BilevelError.invalidArgument` for a non-positive parameter or a missing η,
    ///   `.unsupportedConstraints` for a constrained lower level; `.invalidSteps` for Q₁ or Q₂ < 1; `.nonFinite` naming the loop and step.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        for (name, value) in [("lowerRegularization (μ₁)", lowerRegularization), ("valueShift (μ₂)", valueShift),
                              ("upperRegularization (θ)", upperRegularization), ("barrier (τ)", barrier), ("tolerance", tolerance)] {
            try requirePositive("BVFIM.\(name)", value)
        }
        guard barrierIterations >= 1 else { throw BilevelError.invalidSteps(name: "BVFIM.barrierIterations (Q₂)", value: barrierIterations, requirement: "Q₂ ≥ 1") }
        let q1 = try problem.firstOrderSteps(lowerIterations, for: self, x: x, y0: y0)
        let eta = try problem.firstOrderStep(innerStep, method: "BVFIM")
        let (mu1, mu2, theta, tau) = (lowerRegularization, valueShift, upperRegularization, barrier)
        let oracle = BilevelOracle(problem)
        return try timed(oracle) { diagnostics in
            // Eq. 34: the regularised lower value function.
            var z = y0.detached, lowerSteps = 0, lowerNorm = Double.infinity
            while lowerSteps < q1 {
                let g = oracle.lowerGradients(x, z).y + mu1 * z
                lowerNorm = g.squaredNorm().scalar.squareRoot()
                if lowerNorm <= tolerance { break }
                z = (z - eta * g).detached
                lowerSteps += 1
                if z.hasNonFinite { throw BilevelError.nonFinite(quantity: "BVFIM's value-function iterate z", step: lowerSteps) }
            }
            let psi = oracle.lowerValue(x, z).scalar + 0.5 * mu1 * z.squaredNorm().scalar + mu2
            // Eq. 35 by backtracking gradient descent inside the barrier's domain f(x, y) < ψ.
            func barrierValue(_ y: Tensor) -> Double {
                let gap = psi - oracle.lowerValue(x, y).scalar
                guard gap > 0 else { return .infinity }
                return oracle.upperValue(x, y).scalar + 0.5 * theta * y.squaredNorm().scalar - tau * log(gap)
            }
            func barrierGradient(_ y: Tensor) -> Tensor {
                let gap = psi - oracle.lowerValue(x, y).scalar
                return oracle.upperGradients(x, y).y + theta * y + (tau / gap) * oracle.lowerGradients(x, y).y
            }
            var y = z, step = eta, barrierSteps = 0, recentValues = [barrierValue(z)]
            var g = barrierGradient(y), norm = g.squaredNorm().scalar.squareRoot()
            try requireFinite(g, "BVFIM's barrier gradient ∇ᵧF + θy + τ∇ᵧf/(ψ − f) at the start y = z")
            while barrierSteps < barrierIterations && norm > tolerance {
                // Nonmonotone Armijo test against the largest of the last 10 values (Grippo et al.), so the
                // Barzilai–Borwein steps below are not cut back on this ill-conditioned barrier.
                let reference = recentValues.max()!
                var candidate = y, candidateValue = Double.infinity, halvings = 0
                while halvings < 60 {
                    candidate = (y - step * g).detached
                    candidateValue = barrierValue(candidate)
                    if candidateValue <= reference - 1e-4 * step * norm * norm { break }
                    step *= 0.5
                    halvings += 1
                }
                guard halvings < 60 else { break }  // no decrease at any step: y is stationary to rounding
                let next = barrierGradient(candidate)
                let (dy, dg) = (candidate - y, next - g)
                let curvature = dot(dy.reshaped(to: [dy.count]), dg.reshaped(to: [dg.count])).scalar
                step = curvature > 0 ? dy.squaredNorm().scalar / curvature : 2 * step
                (y, g) = (candidate, next)
                recentValues = Array((recentValues + [candidateValue]).suffix(10))
                barrierSteps += 1
                norm = g.squaredNorm().scalar.squareRoot()
                if norm.isNaN || y.hasNonFinite { throw BilevelError.nonFinite(quantity: "BVFIM's barrier iterate y", step: barrierSteps) }
            }
            let gap = psi - oracle.lowerValue(x, y).scalar
            let upper = oracle.upperGradients(x, y), atY = oracle.lowerGradients(x, y), atZ = oracle.lowerGradients(x, z)
            diagnostics.innerSteps = lowerSteps
            diagnostics.solverIterations = barrierSteps
            diagnostics.residual = norm
            diagnostics.converged = norm <= tolerance
            diagnostics.notes.append("BVFIM: μ₁ = \(mu1), μ₂ = \(mu2), θ = \(theta), τ = \(tau); Q₁ = \(lowerSteps) (‖∇‖ = \(lowerNorm)), Q₂ = \(barrierSteps) (‖∇‖ = \(norm)); ψ − f = \(gap), multiplier τ/(ψ − f) = \(tau / gap)")
            return (upper.x + (tau / gap) * (atY.x - atZ.x), y)
        }
    }
}
