/// BDA, bilevel descent aggregation (Liu et al. 2020 (BDA), Algorithm 1; Liu et al. 2021 (survey), eq. 32): the inner loop descends an
/// aggregation of both levels,
///
///     y_{t+1} = y_t − (μ α_t ∇ᵧF(x, y_t) + (1 − μ) β ∇ᵧf(x, y_t)),   t = 0 … T−1,
///
/// so that, among several lower-level minimisers, the iterates drift towards those good for F; the
/// hypergradient is the exact derivative of `x ↦ F(x, y_T(x))`, computed by `ReverseUnroll` (RAD)
/// through this loop. Upper step schedule: `.constant` (α_t = α) or `.harmonic` (α_t = α/(t + 1), the
/// vanishing weight of the paper's convergence analysis, so that f dominates late in the loop); β is
/// constant.
///
/// Implementation: a `BilevelProblem` over the state `s = [vec y, t]` (the step counter rides along so
/// `.custom` dynamics can read α_t; it does not depend on x, so it adds nothing to the derivative) with
/// F and f read through `vec y`, then `ReverseUnroll` on it from `[vec y0, 0]` (from `[vec y0(x), 0]`, with
/// its `∂y0/∂x` term, when the problem's start depends on x). No backward loop of its own.
///
/// Cost: T forward steps (two gradients each, inside Ψ, uncounted like every inner dynamics) plus T
/// step VJPs (`counts.vjps == T`, each a reverse-over-reverse product through both gradients), one upper
/// gradient; memory O(T·|y|). `μ = 0` is RAD through gradient descent with step β. Use it when the lower
/// level may have several minimisers. `innerSolution` is `y_T`.
public struct BDA: HypergradientMethod, Sendable {
    /// How the upper step α_t changes with the inner step t.
    public enum Schedule: Sendable {
        /// α_t = α.
        case constant
        /// α_t = α / (t + 1).
        case harmonic

        /// α_t for the base step α at inner step t (0-based).
        public func step(_ alpha: Double, at t: Double) -> Double {
            switch self {
            case .constant: return alpha
            case .harmonic: return alpha / (t + 1)
            }
        }
    }

    /// The aggregation weight μ ∈ [0, 1] of the upper gradient.
    public var aggregation: Double
    /// The base upper step α.
    public var upperStep: Double
    /// The schedule of α_t.
    public var upperSchedule: Schedule
    /// The lower step β, or `nil` for the step of the problem's `.gradientDescent` dynamics.
    public var innerStep: Double?
    /// +1 descends F (optimistic BDA); −1 ascends it, the pessimistic aggregation (`PessimisticBDA`).
    var upperSign = 1.0

    /// `"BDA"`.
    public var name: String { "BDA" }

    /// BDA with weight μ, upper step α (scheduled by `upperSchedule`) and lower step β (see the type's
    /// documentation).
    public init(aggregation: Double, upperStep: Double, upperSchedule: Schedule = .harmonic, innerStep: Double? = nil) {
        self.aggregation = aggregation
        self.upperStep = upperStep
        self.upperSchedule = upperSchedule
        self.innerStep = innerStep
    }

    /// The RAD hypergradient through T aggregated steps from `y0` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for μ outside [0, 1], α ≤ 0, β ≤ 0 or a missing β;
    ///   everything `ReverseUnroll` throws (T < 1, NaN/Inf at an inner step).
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        guard (0...1).contains(aggregation) else {
            throw BilevelError.invalidArgument(name: "BDA.aggregation (μ)", reason: "must lie in [0, 1], got \(aggregation)")
        }
        try requirePositive("BDA.upperStep (α)", upperStep)
        try problem.validate(x: x, y0: y0, for: self)
        let beta = try problem.firstOrderStep(innerStep, method: "BDA")
        let n = y0.count
        var result = try ReverseUnroll().hypergradient(
            of: aggregatedProblem(problem, lowerStep: beta, like: y0), at: x,
            from: concatenate([y0.reshaped(to: [n]), Tensor([0])]))
        result.innerSolution = result.innerSolution.slice(alongAxis: 0, 0..<n).reshaped(to: y0.shape)
        result.diagnostics.notes.append("BDA: μ = \(aggregation), α = \(upperStep) (\(upperSchedule)), β = \(beta)")
        return result
    }

    /// The problem over `s = [vec y, t]` whose `.custom` dynamics are the aggregated step.
    private func aggregatedProblem(_ problem: BilevelProblem, lowerStep beta: Double, like y0: Tensor) -> BilevelProblem {
        let n = y0.count, shape = y0.shape
        let upper = problem.upper, lower = problem.lower
        let mu = aggregation, alpha = upperStep, schedule = upperSchedule, sign = upperSign
        let iterate = { (s: Tensor) in s.slice(alongAxis: 0, 0..<n).reshaped(to: shape) }
        let step: (Tensor, Tensor) -> Tensor = { s, x in
            let y = iterate(s), t = s.slice(alongAxis: 0, n..<(n + 1))
            let alphaT = schedule.step(alpha, at: t.scalars[0])
            let gUpper = gradient(at: y) { y in upper(x, y) }, gLower = gradient(at: y) { y in lower(x, y) }
            let next = y - (sign * mu * alphaT * gUpper + (1 - mu) * beta * gLower)
            return concatenate([next.reshaped(to: [n]), t + 1])
        }
        let start = problem.initialization.map { initialization in
            { (x: Tensor) in concatenate([initialization(x).reshaped(to: [n]), Tensor([0])]) }
        }
        return BilevelProblem(
            upper: { x, s in upper(x, iterate(s)) }, lower: { x, s in lower(x, iterate(s)) },
            dynamics: .custom(step), innerSteps: problem.innerSteps, initialization: start)
    }
}
