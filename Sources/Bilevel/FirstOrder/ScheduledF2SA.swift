/// F2SA as Kwon et al. 2023 (F2SA) run it (the algorithm with inner loop T, Kwon et al. 2025 (talk), Part II): an outer loop whose
/// multiplier grows and whose steps decay polynomially in k, with the lower iterate z and the penalty
/// iterate y carried across outer steps (never restarted):
///
///     for t < T:  z ← z − γ_k ∇ᵧf(x_k, z),   y ← y − α_k (∇ᵧF(x_k, y) + λ_k ∇ᵧf(x_k, y)),
///     x_{k+1} = x_k − ξ α_k [∇ₓF(x_k, y) + λ_k (∇ₓf(x_k, y) − ∇ₓf(x_k, z))],
///
/// with `α_k = α₀ s_k^(−a)`, `γ_k = γ₀ s_k^(−c)`, `λ_k = λ₀ s_k^(a−c)` (`PenaltySchedule`; exponents from
/// `PenaltySchedule.f2saExponents`: a = 1/3, c = 0 with exact gradients). The bracket is the gradient
/// of `L*_λ(x) = min_y F + λ (f − f*(x))`, whose distance to ∇F(x) is O(1/λ_k) (Kwon et al. 2025 (talk), "A Key Result"),
/// so along the run the bias decays like `k^(−(a−c))`.
///
/// Stochastic form: with `batchSize`, every gradient is taken on a fresh mini-batch of `lowerBatch`
/// (and `upperBatch` when set) drawn from `SeededGenerator(seed:)`; the x-bracket's difference uses one
/// batch for both terms, so its noise is `λ_k · O(‖y − z‖) = O(1)` (the talk's "stochastic smoothness").
///
/// Cost: `3T + 3` gradients per outer step, no second-order products; memory O(|x| + |y|) plus the
/// recorded trajectory. Use it to optimise x end to end with only first-order (possibly stochastic)
/// oracles; `F2SA` gives a one-off estimate at a fixed λ instead.
public struct ScheduledF2SA {
    /// The step-size and multiplier schedules.
    public var schedule: PenaltySchedule
    /// The inner steps T per outer step (T = O(κ) in the theory).
    public var innerSteps: Int
    /// Mini-batch size for the stochastic form, or `nil` for full gradients.
    public var batchSize: Int?
    /// The seed of the mini-batch sampler.
    public var seed: UInt64

    /// `"F2SA-scheduled"`.
    public var name: String { "F2SA-scheduled" }

    /// F2SA with the given schedule and inner steps (see the type's documentation).
    public init(schedule: PenaltySchedule, innerSteps: Int = 10, batchSize: Int? = nil, seed: UInt64 = 0) {
        self.schedule = schedule
        self.innerSteps = innerSteps
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Runs K outer steps from `(x0, y0, z0)` (z0 defaults to y0), projecting x with `projection` if given.
    ///
    /// - Throws: `BilevelError.invalidSteps` for K < 1 or T < 1, `.invalidArgument` for the schedule or the
    ///   batch size, `.shapeMismatch`, `.nonFinite` naming the iterate and outer step.
    public func minimize(_ problem: BilevelProblem, from x0: Tensor, y0: Tensor, z0: Tensor? = nil, steps: Int,
        projection: ((Tensor) -> Tensor)? = nil
    ) throws -> PenaltyTrajectory {
        try runPenaltyLoop(
            problem, schedule: schedule, innerSteps: innerSteps, momentum: nil, batchSize: batchSize, seed: seed,
            method: name, from: x0, y0: y0, z0: z0, steps: steps, projection: projection)
    }
}
