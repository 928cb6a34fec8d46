/// BOME (Liu et al. 2022 (BOME), "BOME! Bilevel optimization made easy: a simple first-order approach",
/// Algorithm 1): the value-function constraint
///
///     q(x, y) = f(x, y) − f(x, z_T),   z_T = T gradient steps z ← z − η ∇ᵧf(x, z) from y (z_T held constant),
///
/// and the joint direction for `(x, y)`
///
///     d = ∇F + λ ∇q,   λ = max((φ − ⟨∇F, ∇q⟩) / ‖∇q‖², 0),   φ = η_φ ‖∇q‖²,
///
/// with `∇F = (∇ₓF(x, y), ∇ᵧF(x, y))`, `∇q = (∇ₓf(x, y) − ∇ₓf(x, z_T), ∇ᵧf(x, y))` (inner products and
/// norms over x and y jointly). λ is the smallest multiplier for which d decreases q at the rate φ: a
/// dynamic barrier that lets F drive the step only when it does not undo the lower-level progress.
/// `λ = 0` when `∇q = 0`.
///
/// BOME updates x and y *jointly*: `hypergradient` returns the x part `d_x` as the "hypergradient" and
/// applies the y part itself, `innerSolution = y − ξ d_y` with ξ = `jointStep`. The lower iterate y is
/// `y0`, so run it under `minimize(…, warmStart: true)` (which carries y from step to step) with
/// `optimizer: .gradientDescent(step: ξ)` to reproduce Algorithm 1 exactly.
///
/// Cost: `T + 3` gradients (T for z_T, two for ∇q, one for ∇F), no second-order products; memory
/// O(|x| + |y|). Use it for the value-function reformulation with a single, self-tuning multiplier; it
/// tolerates lower levels whose solution is not unique. The diagnostics note λ, `q` and `‖∇q‖`.
public struct BOME: HypergradientMethod, Sendable {
    /// The step ξ of the joint update, applied here to y (and by the outer optimizer to x).
    public var jointStep: Double
    /// η_φ in the control `φ = η_φ ‖∇q‖²` (the paper's η; 0.5 there).
    public var controlCoefficient: Double
    /// The steps T of the lower-level loop for z_T, or `nil` for `problem.innerSteps`.
    public var innerSteps: Int?
    /// The gradient step η of that loop, or `nil` for the step of the problem's `.gradientDescent` dynamics.
    public var innerStep: Double?

    /// `"BOME"`.
    public var name: String { "BOME" }

    /// BOME with joint step ξ and control coefficient η_φ (see the type's documentation).
    public init(jointStep: Double, controlCoefficient: Double = 0.5, innerSteps: Int? = nil, innerStep: Double? = nil) {
        self.jointStep = jointStep
        self.controlCoefficient = controlCoefficient
        self.innerSteps = innerSteps
        self.innerStep = innerStep
    }

    /// The x part of BOME's direction at `(x, y0)`; `innerSolution` is y after its part of the joint step.
    ///
    /// - Throws: `BilevelError.invalidArgument` for ξ ≤ 0, η_φ ≤ 0, a step η ≤ 0 or a missing one;
    ///   `.invalidSteps` for T < 1; `.nonFinite` naming the step of the z loop or the updated y.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try requirePositive("BOME.jointStep (ξ)", jointStep)
        try requirePositive("BOME.controlCoefficient (η_φ)", controlCoefficient)
        let steps = try problem.firstOrderSteps(innerSteps, for: self, x: x, y0: y0)
        let eta = try problem.firstOrderStep(innerStep, method: "BOME")
        let oracle = BilevelOracle(problem)
        let gradients = try GradientSource(oracle, batchSize: nil, seed: 0, method: "BOME")
        return try timed(oracle) { diagnostics in
            let y = y0.detached
            let z = try gradients.lowerDescent(x, from: y, steps: steps, step: eta)
            let upper = try gradients.upper(x, y), gap = try gradients.valueGap(x, y, z)
            let gapNormSquared = gap.x.squaredNorm().scalar + gap.y.squaredNorm().scalar
            let alignment = dot(upper.x, gap.x).scalar + dot(upper.y, gap.y).scalar
            let lambda = gapNormSquared > 0 ? max((controlCoefficient * gapNormSquared - alignment) / gapNormSquared, 0) : 0
            let next = y - jointStep * (upper.y + lambda * gap.y)
            guard !next.hasNonFinite else { throw BilevelError.nonFinite(quantity: "BOME's updated lower iterate y", step: nil) }
            diagnostics.innerSteps = steps
            let q = (oracle.lowerValue(x, y) - oracle.lowerValue(x, z)).scalar
            diagnostics.notes.append("BOME: λ = \(lambda), q = \(q), ‖∇q‖ = \(gapNormSquared.squareRoot())")
            return (upper.x + lambda * gap.x, next)
        }
    }
}
