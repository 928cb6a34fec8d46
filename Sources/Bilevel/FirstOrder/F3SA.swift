import Foundation

/// F³SA, the momentum-assisted variant of F2SA (Kwon et al. 2023 (F2SA); Kwon et al. 2025 (talk), "F³SA:
/// Variant with Momentum"; the STORM estimator
/// of Khanduri et al. 2021): a single loop (one step each of z, y, x per k) in which every gradient is
/// replaced by a recursive momentum estimate on the sample drawn at step k,
///
///     h_k = ∇(x_k, w_k; φ_k) + (1 − η_k) (h_{k−1} − ∇(x_{k−1}, w_{k−1}; φ_k)),   η_k = s_k^(−m),
///     z_{k+1} = z_k − γ_k h_gz,   y_{k+1} = y_k − α_k (h_fy + λ_k h_gy),
///     x_{k+1} = x_k − ξ α_k (h_fx + λ_k (h_gxy − h_gxz)),
///
/// with `PenaltySchedule` steps and multiplier (exponents `PenaltySchedule.f3saExponents`) and momentum
/// exponent m = 2c by default. With exact gradients c = 0, so η_k = 1 and F³SA is F2SA with T = 1
/// ("momentum gives no improvement in the exact-gradient case"); with noisy gradients the correction
/// cancels most of the sampling noise between consecutive points.
///
/// Cost: up to 12 gradients per step (6 estimates, each at the new and the previous point on one sample),
/// 6 when η_k = 1; no second-order products. Use it in the stochastic setting, where it needs fewer
/// oracle calls than F2SA (`K^(−1/5)` against `K^(−1/7)` with noisy F and f). Shares the loop with
/// `ScheduledF2SA` (`runPenaltyLoop`).
public struct F3SA {
    /// The step-size and multiplier schedules.
    public var schedule: PenaltySchedule
    /// The momentum exponent m of `η_k = s_k^(−m)`, or `nil` for 2c.
    public var momentumExponent: Double?
    /// Mini-batch size for the stochastic form, or `nil` for full gradients.
    public var batchSize: Int?
    /// The seed of the mini-batch sampler.
    public var seed: UInt64

    /// `"F3SA"`.
    public var name: String { "F3SA" }

    /// F³SA with the given schedule (see the type's documentation).
    public init(schedule: PenaltySchedule, momentumExponent: Double? = nil, batchSize: Int? = nil, seed: UInt64 = 0) {
        self.schedule = schedule
        self.momentumExponent = momentumExponent
        self.batchSize = batchSize
        self.seed = seed
    }

    /// η_k = ((k + k₀)/k₀)^(−m), in (0, 1].
    public func momentumWeight(at k: Int) -> Double {
        pow((Double(k) + schedule.offset) / schedule.offset, -(momentumExponent ?? 2 * schedule.lowerStepExponent))
    }

    /// Runs K single-loop steps from `(x0, y0, z0)` (z0 defaults to y0), projecting x with `projection` if given.
    ///
    /// - Throws: `BilevelError.invalidArgument` for a negative momentum exponent, the schedule or the batch
    ///   size; `.invalidSteps` for K < 1; `.shapeMismatch`; `.nonFinite` naming the iterate and step.
    public func minimize(_ problem: BilevelProblem, from x0: Tensor, y0: Tensor, z0: Tensor? = nil, steps: Int,
        projection: ((Tensor) -> Tensor)? = nil
    ) throws -> PenaltyTrajectory {
        if let momentumExponent, !(momentumExponent >= 0) {
            throw BilevelError.invalidArgument(name: "F3SA.momentumExponent", reason: "must be ≥ 0, got \(momentumExponent)")
        }
        return try runPenaltyLoop(
            problem, schedule: schedule, innerSteps: 1, momentum: momentumWeight, batchSize: batchSize, seed: seed,
            method: name, from: x0, y0: y0, z0: z0, steps: steps, projection: projection)
    }
}
