import Foundation

/// MORBiT, the multi-objective robust bilevel two-timescale algorithm (Gu et al. 2023 (MORBiT), as
/// given in Dash & Ram 2023, Algorithm 2): n lower/upper pairs
/// `(f_l,i, f_u,i)` share the upper variable θ and each has its own lower variable φ_i; it solves
///
///     min_θ max_{λ ∈ Δ_n} Σ_i λ_i f_u,i(θ, φ*_i(θ)),   φ*_i(θ) = argmin_φ f_l,i(θ, φ),
///
/// i.e. it minimises the WORST task's upper objective, by one single loop over k:
///
///     φ_i ← φ_i − β ∇_φ f_l,i(θ_k, φ_i)                                 (one lower step per task)
///     θ_{k+1} = P_Θ(θ_k − α Σ_i λ_i [∇_θ f_u,i − ∇²_θφ f_l,i (∇²_φφ f_l,i)⁻¹ ∇_φ f_u,i](θ_k, φ_i))
///     λ ← P_Δ(λ + γ [f_u,1(θ_{k+1}, φ_1), …, f_u,n(θ_{k+1}, φ_n)])      (projected ascent on the simplex)
///
/// The bracket is each task's implicit hypergradient at the current φ_i (Dash & Ram 2023, eq. 38), computed by
/// `Implicit(solver:).hypergradient(of:at:innerSolution:)` with the given solver. Steps are constant;
/// Gu et al.'s analysis takes α, γ ∝ K^(−3/5) and β ∝ K^(−2/5) — the lower level on the faster timescale.
/// With γ = 0 and λ uniform it is plain averaging (`min_θ Σ f_u,i / n`), which can leave one task much
/// worse off.
///
/// Cost per step: n lower gradients, n implicit hypergradients (one upper gradient, the solver's HVPs and
/// one mixed product each), n upper values. Use it for multi-task or robust learning where the worst task
/// matters.
public struct MORBiT<Solver: HessianInverseSolver> {
    /// The linear solver of each task's implicit hypergradient.
    public var solver: Solver
    /// α > 0, the θ step.
    public var upperStep: Double
    /// β > 0, the lower step of every task.
    public var lowerStep: Double
    /// γ ≥ 0, the simplex ascent step (0: fixed weights).
    public var weightStep: Double

    /// `"MORBiT"`.
    public var name: String { "MORBiT" }

    /// MORBiT with the given solver and steps.
    public init(solver: Solver, upperStep: Double, lowerStep: Double, weightStep: Double) {
        self.solver = solver
        self.upperStep = upperStep
        self.lowerStep = lowerStep
        self.weightStep = weightStep
    }

    /// The result: final θ, lower variables and task weights, and the worst upper value per step.
    public struct Run {
        /// θ_K.
        public var x: Tensor
        /// φ_i at the end.
        public var innerSolutions: [Tensor]
        /// λ at the end (a point of the simplex).
        public var weights: [Double]
        /// `max_i f_u,i(θ_{k+1}, φ_i)` at every step.
        public var worstUpperValues: [Double]
    }

    /// Runs K steps from θ0, the φ_i from `y0s`, and λ from `weights` (default uniform).
    ///
    /// - Throws: `BilevelError.unsupportedConstraints` for a task with lower-level constraints; `.invalidArgument` for no tasks, a count of `y0s` or `weights` that does not
    ///   match, steps ≤ 0 (γ < 0), weights off the simplex; `.invalidSteps` for K < 1; `.shapeMismatch`
    ///   when the projection changes θ's shape; `.nonFinite` naming the step; and what the solver throws.
    public func minimize(
        tasks: [BilevelProblem], from x0: Tensor, y0s: [Tensor], weights initial: [Double]? = nil, steps: Int,
        projection: ((Tensor) -> Tensor)? = nil
    ) throws -> Run {
        guard !tasks.isEmpty else { throw BilevelError.invalidArgument(name: "MORBiT tasks", reason: "need at least one task") }
        guard y0s.count == tasks.count else {
            throw BilevelError.invalidArgument(name: "MORBiT y0s", reason: "\(y0s.count) initial lower variables for \(tasks.count) tasks")
        }
        guard steps >= 1 else { throw BilevelError.invalidSteps(name: "MORBiT steps (K)", value: steps, requirement: "K ≥ 1") }
        try requirePositive("MORBiT.upperStep (α)", upperStep)
        try requirePositive("MORBiT.lowerStep (β)", lowerStep)
        guard weightStep >= 0 else { throw BilevelError.invalidArgument(name: "MORBiT.weightStep (γ)", reason: "must be ≥ 0, got \(weightStep)") }
        var lambda = initial ?? Array(repeating: 1 / Double(tasks.count), count: tasks.count)
        guard lambda.count == tasks.count, lambda.allSatisfy({ $0 >= 0 }), abs(lambda.reduce(0, +) - 1) < 1e-9 else {
            throw BilevelError.invalidArgument(name: "MORBiT weights", reason: "\(lambda) is not a point of the simplex over \(tasks.count) tasks")
        }
        for (task, y0) in zip(tasks, y0s) {
            try task.validate(x: x0, y0: y0, outerLoop: name)
        }
        let implicit = Implicit(solver: solver)
        var x = x0.detached, ys = y0s.map(\.detached), worst: [Double] = []
        for k in 0..<steps {
            ys = zip(tasks, ys).map { task, y in (y - lowerStep * BilevelOracle(task).lowerGradients(x, y).y).detached }
            var direction = Tensor(zeros: x.shape)
            for (i, task) in tasks.enumerated() where lambda[i] > 0 {
                direction = direction + lambda[i] * (try implicit.hypergradient(of: task, at: x, innerSolution: ys[i]).hypergradient)
            }
            x = try projected(x - upperStep * direction, by: projection, like: x, method: "MORBiT").detached
            if x.hasNonFinite || ys.contains(where: \.hasNonFinite) { throw BilevelError.nonFinite(quantity: "MORBiT's iterates", step: k + 1) }
            let values = zip(tasks, ys).map { task, y in task.upper(x, y).scalar }
            worst.append(values.max()!)
            lambda = projectOntoSimplex(zip(lambda, values).map { $0 + weightStep * $1 })
        }
        return Run(x: x, innerSolutions: ys, weights: lambda, worstUpperValues: worst)
    }
}

/// The Euclidean projection of `v` onto the simplex `{λ ≥ 0, Σλ = 1}` (sort and threshold: the largest
/// τ with `λ_i = max(v_i − τ, 0)` summing to 1).
func projectOntoSimplex(_ v: [Double]) -> [Double] {
    let sorted = v.sorted(by: >)
    var sum = 0.0, threshold = 0.0
    for (i, value) in sorted.enumerated() {
        sum += value
        let candidate = (sum - 1) / Double(i + 1)
        if value - candidate > 0 { threshold = candidate }
    }
    return v.map { max($0 - threshold, 0) }
}
