/// F2SA, the fully first-order method of Kwon et al. 2023 ("A fully first-order method for stochastic
/// bilevel optimization", Algorithm 1), as a hypergradient estimate. It differentiates the penalty
/// (Lagrangian) `L_λ(x, y) = F(x, y) + λ (f(x, y) − f*(x))`, `f*(x) = min_y f(x, y)`, at its minimiser in
/// y, using only gradients:
///
///     ∇F(x) ≈ ∇ₓL_λ(x, y_λ) = ∇ₓF(x, y_λ) + λ (∇ₓf(x, y_λ) − ∇ₓf(x, z)),
///     z   ≈ argmin_y f(x, y):       z_{t+1} = z_t − η ∇ᵧf(x, z_t),
///     y_λ ≈ argmin_y F + λ f:       y_{t+1} = y_t − η/(1 + λ) · (∇ᵧF(x, y_t) + λ ∇ᵧf(x, y_t)),
///
/// both for T steps from `y0`. For exact `y_λ` and `z` the estimate differs from `∇F(x)` by O(1/λ)
/// (Kwon et al. §3; measured slope −1 on P1 in the tests), so λ trades bias against the conditioning of
/// the y-loop.
///
/// Step sizes: z uses the problem's gradient step η (or `innerStep`). The y-loop's default step
/// `η/(1 + λ)` makes each y-step a step of size η on the convex combination `(F + λ f)/(1 + λ)`, whose
/// curvature is at most `max(L_F, L_f)`: the step stays stable for every λ when `L_F ≲ L_f`, and for
/// large λ the y-loop contracts at the rate of the z-loop. Override it with `penaltyStep`.
///
/// Stochastic form (Algorithm 1 with mini-batches): with `batchSize` every gradient query draws
/// `batchSize` distinct samples from a `SeededGenerator(seed:)` — f through `problem.lowerBatch`, F through
/// `problem.upperBatch` when the problem has one (else the full F) — and the final difference
/// `∇ₓf(x, y_λ) − ∇ₓf(x, z)` uses one batch for both terms. The result is deterministic given the seed.
/// With constant steps the mini-batch noise left in `y_λ − z` is multiplied by λ, so the estimate's
/// variance grows like λ²: keep λ moderate (or batches large) in the stochastic form — the bias/variance
/// trade-off that Algorithm 1 manages by growing λ_k slowly while shrinking its steps.
///
/// Outer loop: Algorithm 1 increases λ_k across outer steps; `increasingMultiplier(by:)` gives the
/// method for outer step k (`λ_k = λ_0 + δ k`, seed `seed + k`) for `minimize(_:methodAtStep:…)`. With
/// `warmStart`, `minimize` carries the returned `z_T` and both loops restart from it.
///
/// Cost: `3T + 3` gradients (T for z, 2T for y_λ, three for the estimate), no second-order products;
/// memory O(|y|). Use it when Hessian-vector products are unavailable or too costly, or when only
/// stochastic gradients exist. `innerSolution` is `z_T`; the diagnostics note λ, the steps and `‖y_λ − z_T‖`.
public struct F2SA: HypergradientMethod {
    /// The penalty multiplier λ > 0.
    public var multiplier: Double
    /// The steps T of each of the two loops, or `nil` for `problem.innerSteps`.
    public var innerSteps: Int?
    /// The gradient step η on f, or `nil` for the step of the problem's `.gradientDescent` dynamics.
    public var innerStep: Double?
    /// The gradient step on `F + λ f`, or `nil` for `η/(1 + λ)`.
    public var penaltyStep: Double?
    /// Mini-batch size for the stochastic form, or `nil` for full gradients.
    public var batchSize: Int?
    /// The seed of the mini-batch sampler (unused without `batchSize`).
    public var seed: UInt64

    /// `"F2SA"`.
    public var name: String { "F2SA" }

    /// F2SA with multiplier λ (see the type's documentation for the other parameters).
    public init(
        multiplier: Double, innerSteps: Int? = nil, innerStep: Double? = nil, penaltyStep: Double? = nil,
        batchSize: Int? = nil, seed: UInt64 = 0
    ) {
        self.multiplier = multiplier
        self.innerSteps = innerSteps
        self.innerStep = innerStep
        self.penaltyStep = penaltyStep
        self.batchSize = batchSize
        self.seed = seed
    }

    /// The method for outer step k of Algorithm 1's increasing schedule: multiplier `λ_k = λ + δ k`
    /// (δ = `increment`) and seed `seed + k`, other parameters unchanged. Pass it to
    /// `minimize(_:methodAtStep:from:y0:optimizer:steps:projection:warmStart:)`.
    public func increasingMultiplier(by increment: Double) -> (Int) -> F2SA {
        { k in
            var method = self
            method.multiplier = multiplier + increment * Double(k)
            method.seed = seed &+ UInt64(k)
            return method
        }
    }

    /// The F2SA estimate at `x`, both loops from `y0` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for λ ≤ 0, a step ≤ 0, a missing step (non-gradient-descent
    ///   dynamics without `innerStep`), `batchSize < 1`, a batch larger than the sample count, or a
    ///   `batchSize` without `problem.lowerBatch`; `.invalidSteps` for T < 1; `.nonFinite` naming the loop
    ///   and step; plus what `validate` throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try requirePositive("F2SA.multiplier (λ)", multiplier)
        let steps = try problem.firstOrderSteps(innerSteps, for: self, x: x, y0: y0)
        let eta = try problem.firstOrderStep(innerStep, method: "F2SA")
        let lambda = multiplier, penaltyEta = penaltyStep ?? eta / (1 + lambda)
        try requirePositive("F2SA.penaltyStep", penaltyEta)
        let oracle = BilevelOracle(problem)
        let gradients = try GradientSource(oracle, batchSize: batchSize, seed: seed, method: "F2SA")
        return try timed(oracle) { diagnostics in
            let z = try gradients.lowerDescent(x, from: y0, steps: steps, step: eta)
            let yLambda = try descend(from: y0, steps: steps, step: penaltyEta, quantity: "the penalty iterate y_λ") { y in
                try gradients.upper(x, y).y + lambda * gradients.lower(x, y).y
            }
            let estimate = try gradients.upper(x, yLambda).x + lambda * gradients.valueGap(x, yLambda, z).x
            diagnostics.innerSteps = steps
            diagnostics.notes.append(
                "F2SA: λ = \(lambda), η = \(eta), penalty step = \(penaltyEta), ‖y_λ − z_T‖ = \((yLambda - z).squaredNorm().scalar.squareRoot())"
                    + (batchSize.map { ", mini-batches of \($0) (seed \(seed))" } ?? ""))
            return (estimate, z)
        }
    }
}
