/// PBGD, penalty-based bilevel gradient descent (Shen & Chen 2023, "On penalty-based bilevel gradient
/// descent method", Algorithm 1, V-PBGD): gradient descent on the value-function penalty
///
///     F(x, y) + γ (f(x, y) − v(x)),   v(x) = min_y f(x, y) ≈ f(x, z_T),
///
/// with `z_T` from T gradient steps `z ← z − η ∇ᵧf(x, z)` started at the current y (`y0`) and held
/// constant (Danskin: `∇v(x) = ∇ₓf(x, z*)`). At `(x, y0)`:
///
///     x-gradient:  ∇ₓF(x, y0) + γ (∇ₓf(x, y0) − ∇ₓf(x, z_T)),
///     y-update:    K gradient steps  y ← y − α (∇ᵧF(x, y) + γ ∇ᵧf(x, y))  from y0,
///
/// returned as `hypergradient` and `innerSolution`. With K = `penaltySteps` = 1 this is one joint
/// gradient step on the penalty, as in Algorithm 1: run it under `minimize(…, warmStart: true)` (which
/// carries y) with `optimizer: .gradientDescent(step: α)`. The default α = `η/(1 + γ)` is a step η on
/// `(F + γ f)/(1 + γ)` (see `F2SA` for why that is stable for every γ); override it with `penaltyStep`.
/// Start y near the lower-level solution (e.g. a few inner steps from the initial guess): the x-gradient
/// at a y far from `argmin_y F + γ f` is dominated by `γ (∇ₓf(x, y) − ∇ₓf(x, z_T))` and points nowhere
/// useful (on P1 from `y = 0` the first steps raise F). For the penalty's minimisers to be ε-stationary for the bilevel problem, γ must grow like 1/ε
/// (Shen & Chen §3): larger γ, less bias, smaller steps.
///
/// Cost: `T + 2K + 1` gradients (T for z_T; the first y-step reuses the two gradients at `(x, y0)`), no
/// second-order products; memory O(|x| + |y|). Use it as the simplest fully first-order method with a
/// fixed penalty. The diagnostics note γ, the steps and the gap `f(x, y0) − f(x, z_T)`.
///
/// With `problem.constraints` (linear, `y ∈ Y(x)`), PBGD is projected (Shen & Chen 2023's projected form for
/// constrained lower levels): y0 is first projected onto Y(x), every z-step and y-step is followed by the
/// Euclidean projection Π onto Y(x) (`FeasibleProjection`), and `∇v(x)` gains the constraint term of
/// Danskin's theorem, `∇ₓ[λᵀ(E(x) z − e(x)) + μᵀ(G(x) z − h(x))]`, with the multipliers read off the
/// projection at z_T (zero for constraints that do not depend on x).
public struct PBGD: HypergradientMethod, Sendable {
    /// The penalty weight γ > 0.
    public var penalty: Double
    /// The steps K ≥ 1 on y taken per call.
    public var penaltySteps: Int
    /// The step α of the y-update, or `nil` for `η/(1 + γ)`.
    public var penaltyStep: Double?
    /// The steps T of the lower-level loop for z_T, or `nil` for `problem.innerSteps`.
    public var innerSteps: Int?
    /// The gradient step η of that loop, or `nil` for the step of the problem's `.gradientDescent` dynamics.
    public var innerStep: Double?

    /// `"PBGD"`.
    public var name: String { "PBGD" }

    /// `true`: z and y are projected onto the feasible set (see the type's documentation).
    public var honoursConstraints: Bool { true }

    /// PBGD with penalty γ (see the type's documentation for the other parameters).
    public init(penalty: Double, penaltySteps: Int = 1, penaltyStep: Double? = nil, innerSteps: Int? = nil, innerStep: Double? = nil) {
        self.penalty = penalty
        self.penaltySteps = penaltySteps
        self.penaltyStep = penaltyStep
        self.innerSteps = innerSteps
        self.innerStep = innerStep
    }

    /// The penalty's x-gradient at `(x, y0)`; `innerSolution` is y after K penalty steps.
    ///
    /// - Throws: `BilevelError.invalidArgument` for γ ≤ 0, a step ≤ 0 or a missing η; `.invalidSteps` for
    ///   T < 1 or K < 1; `.nonFinite` naming the loop and step.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try requirePositive("PBGD.penalty (γ)", penalty)
        guard penaltySteps >= 1 else { throw BilevelError.invalidSteps(name: "PBGD.penaltySteps (K)", value: penaltySteps, requirement: "K ≥ 1") }
        let steps = try problem.firstOrderSteps(innerSteps, for: self, x: x, y0: y0)
        let eta = try problem.firstOrderStep(innerStep, method: "PBGD")
        let gamma = penalty, alpha = penaltyStep ?? eta / (1 + gamma)
        try requirePositive("PBGD.penaltyStep (α)", alpha)
        let oracle = BilevelOracle(problem)
        let gradients = try GradientSource(oracle, batchSize: nil, seed: 0, method: "PBGD")
        let projection = try problem.constraints.map { try FeasibleProjection($0, at: x, like: y0) }
        return try timed(oracle) { diagnostics in
            let y = try projection?.project(y0.detached) ?? y0.detached
            let z = try gradients.lowerDescent(x, from: y, steps: steps, step: eta, onto: projection)
            let upper = try gradients.upper(x, y)
            var gap = try gradients.valueGap(x, y, z)
            if let projection { gap.x = gap.x - (try projection.valueGradientCorrection(oracle, x, at: z, step: eta)) }
            // The first y-step reuses the gradients at (x, y0); the remaining K − 1 take fresh ones.
            let step = y - alpha * (upper.y + gamma * gap.y)
            try requireFinite(step, "PBGD's penalty iterate y", step: 1)
            let first = try projection?.project(step) ?? step
            let next = try descend(from: first, steps: penaltySteps - 1, step: alpha, quantity: "PBGD's penalty iterate y (steps after the first)", onto: projection) { y in
                try gradients.upper(x, y).y + gamma * gradients.lower(x, y).y
            }
            diagnostics.innerSteps = steps
            let gapValue = (oracle.lowerValue(x, y) - oracle.lowerValue(x, z)).scalar
            diagnostics.notes.append("PBGD: γ = \(gamma), α = \(alpha), η = \(eta), f(x, y) − f(x, z_T) = \(gapValue)")
            return (upper.x + gamma * gap.x, next)
        }
    }
}
