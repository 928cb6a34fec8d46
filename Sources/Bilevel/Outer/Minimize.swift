/// The record of an outer optimisation run by `minimize`.
public struct OuterTrajectory: Sendable {
    /// `F(x_k, ŷ_k)` at every outer step k, with ŷ_k the method's inner solution at `x_k`.
    public var upperValues: [Double] = []
    /// `‖g_k‖₂`, the norm of the hypergradient estimate at every outer step.
    public var hypergradientNorms: [Double] = []
    /// The method's diagnostics at every outer step.
    public var diagnostics: [Diagnostics] = []
    /// The final upper variable `x_K` (after the last update and projection).
    public var x: Tensor
    /// The last inner solution ŷ_{K−1} returned by the method.
    public var innerSolution: Tensor
}

/// Minimises the hyperobjective `x ↦ F(x, y*(x))` with hypergradients from `method`:
///
///     g_k = method.hypergradient(of: problem, at: x_k, from: y_start),   x_{k+1} = P(update(x_k, g_k)),
///
/// where `update` is the optimizer's rule and P the optional projection onto the feasible upper set.
/// With `warmStart`, each inner loop starts from the previous inner solution (`y_start = ŷ_{k−1}`),
/// otherwise always from `y0`; a problem with an `initialization` starts every inner loop from
/// `initialization(x_k)` instead (and ignores both).
///
/// - Parameters:
///   - problem: the bilevel problem.
///   - method: any `HypergradientMethod`.
///   - x0: the initial upper variable; `y0`: the initial inner iterate.
///   - optimizer: `.gradientDescent(step:)` or `.adam(step:beta1:beta2:epsilon:)`.
///   - steps: the number K ≥ 1 of outer steps.
///   - projection: maps an updated `x` back to the feasible set (must keep its shape), or `nil`.
///   - warmStart: start each inner loop from the previous inner solution.
/// - Returns: the per-step values, hypergradient norms and diagnostics, and the final `x`.
/// - Throws: `BilevelError.invalidSteps` for `steps < 1`, `.invalidArgument` for optimizer parameters,
///   `.shapeMismatch` when the projection changes the shape, `.nonFinite` naming the outer step when a
///   hypergradient is NaN/Inf, and whatever the method throws.
public func minimize(
    _ problem: BilevelProblem, method: some HypergradientMethod, from x0: Tensor, y0: Tensor,
    optimizer: OuterOptimizer, steps: Int, projection: ((Tensor) -> Tensor)? = nil, warmStart: Bool = false
) throws -> OuterTrajectory {
    try minimize(
        problem, methodAtStep: { _ in method }, from: x0, y0: y0, optimizer: optimizer, steps: steps,
        projection: projection, warmStart: warmStart)
}

/// `minimize` with a method that may change from one outer step to the next: outer step k (from 0) uses
/// `methodAtStep(k)`. This is how a schedule enters the outer loop — F2SA's increasing multiplier
/// `λ_k = λ_0 + δ k` (`F2SA.increasingMultiplier(by:)`), or a fresh seed per step for a stochastic method
/// (`{ k in Implicit(solver: StochasticNeumann(terms: 20, step: 0.5, seed: UInt64(k))) }`).
///
/// Parameters, result and errors as `minimize(_:method:from:y0:optimizer:steps:projection:warmStart:)`,
/// plus whatever `methodAtStep` throws.
public func minimize(
    _ problem: BilevelProblem, methodAtStep: (Int) throws -> any HypergradientMethod, from x0: Tensor, y0: Tensor,
    optimizer: OuterOptimizer, steps: Int, projection: ((Tensor) -> Tensor)? = nil, warmStart: Bool = false
) throws -> OuterTrajectory {
    guard steps >= 1 else { throw BilevelError.invalidSteps(name: "outer steps", value: steps, requirement: "at least 1") }
    try optimizer.validate()
    var state = OuterOptimizerState(optimizer)
    var x = x0.detached, yStart = y0.detached
    var trajectory = OuterTrajectory(x: x, innerSolution: yStart)
    for k in 0..<steps {
        let start = problem.initialization.map { $0(x).detached } ?? yStart
        let result = try methodAtStep(k).hypergradient(of: problem, at: x, from: start)
        let g = result.hypergradient
        guard !g.hasNonFinite else { throw BilevelError.nonFinite(quantity: "the hypergradient at outer step \(k + 1)", step: nil) }
        trajectory.upperValues.append(problem.upper(x, result.innerSolution).scalar)
        trajectory.hypergradientNorms.append(g.squaredNorm().scalar.squareRoot())
        trajectory.diagnostics.append(result.diagnostics)
        var next = state.update(x, gradient: g)
        if let projection {
            next = projection(next)
            guard next.shape == x.shape else { throw BilevelError.shapeMismatch(name: "projection(x)", expected: x.shape, actual: next.shape) }
        }
        x = next.detached
        trajectory.innerSolution = result.innerSolution
        if warmStart { yStart = result.innerSolution }
    }
    trajectory.x = x
    return trajectory
}
