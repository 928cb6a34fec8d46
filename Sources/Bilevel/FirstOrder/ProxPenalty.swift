import Foundation

/// The prox-smoothed penalty method for lower levels that are not strongly convex — possibly nonconvex
/// or constrained to a closed convex set 𝒴 (Kwon et al. 2024 (nonconvex); the two-loop algorithm and the
/// single-loop algorithm with momentum of Kwon et al. 2025 (talk), Part III). With `h_σ = σ F + f` it seeks a stationary point of the saddle problem
/// `min_{x∈𝒳, y∈𝒴} max_{z∈𝒴} h_σ(x, y) − f(x, z)`, σ = 1/λ, through the proximal (Moreau-envelope) maps
/// `prox_{ρφ}(y) = argmin_{t∈𝒴} ρ φ(t) + ½ ‖t − y‖²`, which are well defined for ρ below the inverse
/// curvature even when φ is nonconvex:
///
///     two-loop (T inner steps from w_y, w_z):   v ← P_𝒴(v − γ_k (∇ᵧf(x_k, v) + (v − z_k)/ρ))         ≈ prox_{ρ f}(z_k)
///                                               u ← P_𝒴(u − γ_k (σ_k ∇ᵧF + ∇ᵧf)(x_k, u) − γ_k (u − y_k)/ρ) ≈ prox_{ρ h_σ}(y_k)
///     smoothing:     w_y = u, w_z = v,   y ← (1 − β_k) y + β_k w_y,   z ← (1 − β_k) z + β_k w_z
///     upper step:    x ← P_𝒳(x − α_k (σ_k ∇ₓF(x, w_y) + ∇ₓf(x, w_y) − ∇ₓf(x, w_z)))
///
/// The x-direction is `σ_k` times the gradient of `ψ_σ(x) = (min_y h_σ − min_z f)/σ` at the prox points
/// (the envelope's gradient is the objective's x-gradient at the prox point). The single-loop form takes
/// T = 1 and carries w across steps, every gradient a `MomentumEstimate` with `η_k = s_k^(−n)`.
/// Schedules, with `s_k = (k + k₀)/k₀`: `σ_k = σ₀ s_k^(−p)` (p = 1/3 for exact gradients), `α_k = α₀ s_k^(−a)`,
/// `β_k = β₀ s_k^(−a)`, `γ_k = γ₀ s_k^(−c)` (two-loop: a = 0, c = 0 exact; single loop exact: a = 0,
/// p = 1/3, n = 0). `estimates` in the trajectory are the ψ_σ-gradients (the direction divided by σ_k)
/// and `multipliers` are λ_k = 1/σ_k, as for `ScheduledF2SA`.
///
/// Cost per outer step: 3T + 3 gradients (two-loop, plain), up to twice that with momentum; no
/// second-order products. Use it when the lower level has several minimisers, flat directions or a
/// constraint set, where implicit differentiation (which needs an invertible Hessian) does not apply.
public struct ProxPenalty {
    /// ρ > 0, the proximal parameter (below the inverse curvature of f and σF + f in y).
    public var proximal: Double
    /// σ₀ > 0, the penalty weight on F at k = 0.
    public var penalty: Double
    /// p ≥ 0, the decay exponent of σ_k.
    public var penaltyExponent: Double
    /// α₀ > 0, the x-step at k = 0.
    public var upperStep: Double
    /// γ₀ > 0, the step of the prox subproblems at k = 0.
    public var lowerStep: Double
    /// β₀ ∈ (0, 1], the smoothing weight at k = 0.
    public var smoothing: Double
    /// a ≥ 0, the decay exponent of α_k and β_k.
    public var stepExponent: Double
    /// c ≥ 0, the decay exponent of γ_k.
    public var lowerStepExponent: Double
    /// T inner steps per outer step (two-loop), or `nil` for the single loop with momentum.
    public var innerSteps: Int?
    /// n ≥ 0, the momentum exponent of the single loop (0: no momentum).
    public var momentumExponent: Double
    /// k₀ ≥ 1.
    public var offset: Double
    /// P_𝒴, the projection onto the lower feasible set, or `nil` for 𝒴 = ℝⁿ.
    public var lowerProjection: ((Tensor) -> Tensor)?
    /// Mini-batch size for stochastic gradients, or `nil`.
    public var batchSize: Int?
    /// The seed of the mini-batch sampler.
    public var seed: UInt64

    /// `"prox-penalty-two-loop"` or `"prox-penalty-single-loop"`.
    public var name: String { innerSteps == nil ? "prox-penalty-single-loop" : "prox-penalty-two-loop" }

    /// The method with its proximal parameter, schedules and loop form (see the type's documentation).
    public init(
        proximal: Double, penalty: Double, penaltyExponent: Double = 1.0 / 3, upperStep: Double, lowerStep: Double,
        smoothing: Double = 1, stepExponent: Double = 0, lowerStepExponent: Double = 0, innerSteps: Int? = 10,
        momentumExponent: Double = 0, offset: Double = 10, lowerProjection: ((Tensor) -> Tensor)? = nil,
        batchSize: Int? = nil, seed: UInt64 = 0
    ) {
        self.proximal = proximal
        self.penalty = penalty
        self.penaltyExponent = penaltyExponent
        self.upperStep = upperStep
        self.lowerStep = lowerStep
        self.smoothing = smoothing
        self.stepExponent = stepExponent
        self.lowerStepExponent = lowerStepExponent
        self.innerSteps = innerSteps
        self.momentumExponent = momentumExponent
        self.offset = offset
        self.lowerProjection = lowerProjection
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Runs K outer steps from `(x0, y0, z0)` (z0 defaults to y0), projecting x with `projection`.
    ///
    /// - Throws: `BilevelError.unsupportedConstraints` for `problem.constraints` (use `lowerProjection`); `.invalidArgument` for a constant ≤ 0, β₀ > 1, a negative exponent, k₀ < 1 or a
    ///   bad batch size; `.invalidSteps` for K < 1 or T < 1; `.shapeMismatch`; `.nonFinite` naming the
    ///   iterate and step.
    public func minimize(
        _ problem: BilevelProblem, from x0: Tensor, y0: Tensor, z0: Tensor? = nil, steps: Int, projection: ((Tensor) -> Tensor)? = nil
    ) throws -> PenaltyTrajectory {
        try validate(steps: steps)
        try problem.validate(x: x0, y0: y0, outerLoop: name)
        if let z0, z0.shape != y0.shape { throw BilevelError.shapeMismatch(name: "\(name) z0", expected: y0.shape, actual: z0.shape) }
        let start = DispatchTime.now().uptimeNanoseconds
        let oracle = BilevelOracle(problem)
        let source = try GradientSource(oracle, batchSize: batchSize, seed: seed, method: name)
        func scale(_ k: Int, _ exponent: Double) -> Double { pow((Double(k) + offset) / offset, -exponent) }
        func feasible(_ y: Tensor) throws -> Tensor { try projected(y, by: lowerProjection, like: y, method: "\(name) lower") }
        var x = x0.detached, y = try feasible(y0.detached), z = try feasible((z0 ?? y0).detached), wy = y, wz = z
        var trajectory = PenaltyTrajectory(x: x, y: y, z: z)
        let gradients = PenaltyGradients(source)
        for k in 0..<steps {
            let sigma = penalty * scale(k, penaltyExponent), gamma = lowerStep * scale(k, lowerStepExponent)
            let alpha = upperStep * scale(k, stepExponent), beta = smoothing * scale(k, stepExponent)
            let weight = innerSteps == nil ? scale(k, momentumExponent) : nil
            var u = wy, v = wz
            for _ in 0..<(innerSteps ?? 1) {
                let (gz, fy, gy) = try gradients.inner(x, y: u, z: v, weight: weight)
                v = try feasible(v - gamma * (gz + (v - z) / proximal)).detached
                u = try feasible(u - gamma * (sigma * fy + gy + (u - y) / proximal)).detached
            }
            (wy, wz) = (u, v)
            y = ((1 - beta) * y + beta * wy).detached
            z = ((1 - beta) * z + beta * wz).detached
            if y.hasNonFinite || z.hasNonFinite { throw BilevelError.nonFinite(quantity: "\(name)'s lower iterates y, z", step: k + 1) }
            let (fx, gap) = try gradients.upper(x, y: wy, z: wz, weight: weight)
            let direction = (sigma * fx + gap).detached
            trajectory.points.append(x)
            trajectory.multipliers.append(1 / sigma)
            trajectory.estimates.append(direction / sigma)
            x = try projected(x - alpha * direction, by: projection, like: x, method: name).detached
            if x.hasNonFinite { throw BilevelError.nonFinite(quantity: "\(name)'s upper iterate x", step: k + 1) }
        }
        (trajectory.x, trajectory.y, trajectory.z) = (x, y, z)
        trajectory.counts = oracle.counts
        trajectory.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return trajectory
    }

    /// Checks the constants, exponents and counts.
    private func validate(steps: Int) throws {
        guard steps >= 1 else { throw BilevelError.invalidSteps(name: "\(name) outer steps (K)", value: steps, requirement: "K ≥ 1") }
        if let innerSteps, innerSteps < 1 { throw BilevelError.invalidSteps(name: "ProxPenalty.innerSteps (T)", value: innerSteps, requirement: "T ≥ 1") }
        for (label, value) in [("proximal (ρ)", proximal), ("penalty (σ₀)", penalty), ("upperStep (α₀)", upperStep), ("lowerStep (γ₀)", lowerStep), ("smoothing (β₀)", smoothing)] {
            try requirePositive("ProxPenalty.\(label)", value)
        }
        guard smoothing <= 1 else { throw BilevelError.invalidArgument(name: "ProxPenalty.smoothing (β₀)", reason: "must be ≤ 1, got \(smoothing)") }
        for (label, value) in [("penaltyExponent", penaltyExponent), ("stepExponent", stepExponent), ("lowerStepExponent", lowerStepExponent), ("momentumExponent", momentumExponent)] where !(value >= 0) {
            throw BilevelError.invalidArgument(name: "ProxPenalty.\(label)", reason: "must be ≥ 0, got \(value)")
        }
        guard offset >= 1 else { throw BilevelError.invalidArgument(name: "ProxPenalty.offset (k₀)", reason: "must be ≥ 1, got \(offset)") }
    }
}
