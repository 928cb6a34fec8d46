/// Pessimistic bilevel optimisation by gradient aggregation with the pessimistic sign (Liu et al. 2021 (survey),
/// §9 and eqs. 5 and 7; the pessimistic objective of Dash & Ram 2023, eq. 20):
///
///     min_x φ_p(x),   φ_p(x) = max_{y ∈ S(x)} F(x, y),   S(x) = argmin_y f(x, y),
///
/// where the leader must do well for every minimiser the follower may pick. The inner loop is BDA's with
/// the sign of the upper gradient flipped, so among several lower minimisers the iterates drift towards
/// the one *worst* for F:
///
///     y_{t+1} = y_t − (−μ α_t ∇ᵧF(x, y_t) + (1 − μ) β ∇ᵧf(x, y_t)),   t = 0 … T−1,
///
/// and the hypergradient is the exact derivative of `x ↦ F(x, y_T(x))` by reverse-mode unrolling (RAD),
/// as in `BDA`, which this method runs with the sign flipped. Parameters, schedules, cost (T step VJPs,
/// memory O(T·|y|)) and errors as `BDA`. With a single lower minimiser it agrees with BDA as the upper
/// weight μα_t vanishes; where they differ, the gap F_pessimistic − F_optimistic is the price of
/// robustness to the follower's choice. Use it when the follower's tie-breaking cannot be trusted.
public struct PessimisticBDA: HypergradientMethod, Sendable {
    /// The aggregation weight μ ∈ [0, 1] of the (ascended) upper gradient.
    public var aggregation: Double
    /// The base upper step α.
    public var upperStep: Double
    /// The schedule of α_t.
    public var upperSchedule: BDA.Schedule
    /// The lower step β, or `nil` for the step of the problem's `.gradientDescent` dynamics.
    public var innerStep: Double?

    /// `"pessimistic-BDA"`.
    public var name: String { "pessimistic-BDA" }

    /// Pessimistic aggregation with weight μ, upper step α (scheduled by `upperSchedule`) and lower step β.
    public init(aggregation: Double, upperStep: Double, upperSchedule: BDA.Schedule = .harmonic, innerStep: Double? = nil) {
        self.aggregation = aggregation
        self.upperStep = upperStep
        self.upperSchedule = upperSchedule
        self.innerStep = innerStep
    }

    /// The RAD hypergradient of `F(x, y_T(x))` through T pessimistic aggregated steps from `y0`.
    ///
    /// - Throws: what `BDA.hypergradient` throws, with the same parameter names.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try problem.requireConstraintSupport(by: self)
        var bda = BDA(aggregation: aggregation, upperStep: upperStep, upperSchedule: upperSchedule, innerStep: innerStep)
        bda.upperSign = -1
        var result = try bda.hypergradient(of: problem, at: x, from: y0)
        result.diagnostics.notes.append("pessimistic sign: the inner loop ascends F")
        return result
    }
}
