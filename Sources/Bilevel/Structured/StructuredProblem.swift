/// A bilevel problem over structured parameters: `x` and `y` are any `TensorBundle` (a struct of
/// named tensors, an array of layers, nested structs; a plain `Tensor` too),
///
///     min_x F(x, y*(x))   s.t.   y*(x) = argmin_y f(x, y),
///
/// with F and f written on the bundles. Every `HypergradientMethod` accepts it (and `minimize`), and
/// returns the hypergradient as a bundle of x's type: the problem is packed once into the flat
/// `BilevelProblem` over `vec x`, `vec y` (`flat(like:_:)`, the leaves concatenated in visiting order,
/// unpacked by differentiable slices inside F and f), so each method keeps its one implementation.
/// Mini-batch objectives and linear constraints are not carried: set them on the flat problem
/// (`flat(like:_:)` returns a `BilevelProblem`) for the stochastic and constrained methods.
public struct StructuredBilevelProblem<X: TensorBundle, Y: TensorBundle> {
    /// The upper objective `F(x, y)`; must return a scalar.
    public var upper: (X, Y) -> Tensor
    /// The lower objective `f(x, y)`; must return a scalar.
    public var lower: (X, Y) -> Tensor
    /// The inner dynamics, acting on the flat `vec y` (`.custom` receives `vec y` and `vec x`).
    public var dynamics: InnerDynamics
    /// The number T of inner steps (see `BilevelProblem.innerSteps`).
    public var innerSteps: Int
    /// The start `y0(x)` when it depends on x (MAML's `y0 = θ` is `{ $0 }` with `X == Y`), or `nil`; see
    /// `BilevelProblem.initialization`.
    public var initialization: ((X) -> Y)?

    /// A problem from its objectives on bundles (see `BilevelProblem.init` for the other arguments).
    public init(
        upper: @escaping (X, Y) -> Tensor, lower: @escaping (X, Y) -> Tensor,
        dynamics: InnerDynamics = .gradientDescent(step: 0.1), innerSteps: Int = 100,
        initialization: ((X) -> Y)? = nil
    ) {
        self.upper = upper
        self.lower = lower
        self.dynamics = dynamics
        self.innerSteps = innerSteps
        self.initialization = initialization
    }

    /// The flat problem over `vec x` and `vec y` for bundles structured like `x` and `y` (their values
    /// are not used, only their leaves' shapes).
    public func flat(like x: X, _ y: Y) -> BilevelProblem {
        let (upper, lower) = (self.upper, self.lower)
        return BilevelProblem(
            upper: { fx, fy in upper(x.unflattening(fx), y.unflattening(fy)) },
            lower: { fx, fy in lower(x.unflattening(fx), y.unflattening(fy)) },
            dynamics: dynamics, innerSteps: innerSteps,
            initialization: initialization.map { start in { fx in start(x.unflattening(fx)).flattened } })
    }
}

/// A hypergradient over structured parameters: `HypergradientResult` with the bundles' types.
public struct StructuredHypergradientResult<X: TensorBundle, Y: TensorBundle> {
    /// The estimate of `∇F(x)`, a bundle of x's type (leaf i is the derivative with respect to x's leaf i).
    public var hypergradient: X
    /// The inner solution `y_T`, a bundle of y's type.
    public var innerSolution: Y
    /// Counts, solver state and timing of the flat run.
    public var diagnostics: Diagnostics
}

extension HypergradientMethod {
    /// The hypergradient of a structured problem at the bundle `x`, starting the lower level from the
    /// bundle `y0`: this method on `problem.flat(like: x, y0)` at `vec x` from `vec y0`, unpacked.
    ///
    /// - Throws: what the method throws on the flat problem.
    public func hypergradient<X, Y>(
        of problem: StructuredBilevelProblem<X, Y>, at x: X, from y0: Y
    ) throws -> StructuredHypergradientResult<X, Y> {
        let result = try hypergradient(of: problem.flat(like: x, y0), at: x.flattened, from: y0.flattened)
        return StructuredHypergradientResult(
            hypergradient: x.unflattening(result.hypergradient), innerSolution: y0.unflattening(result.innerSolution),
            diagnostics: result.diagnostics)
    }
}

/// The record of `minimize` on a structured problem: the flat record, and the final bundles.
public struct StructuredOuterTrajectory<X: TensorBundle, Y: TensorBundle> {
    /// Upper values, hypergradient norms and diagnostics per outer step (as `OuterTrajectory`).
    public var record: OuterTrajectory
    /// The final upper variable, a bundle of x's type.
    public var x: X
    /// The last inner solution, a bundle of y's type.
    public var innerSolution: Y
}

/// `minimize` on a structured problem: the outer loop on `vec x` of `problem.flat(like: x0, y0)`, with the
/// projection (if any) applied to the bundle.
///
/// - Throws: what `minimize(_:method:from:y0:optimizer:steps:projection:warmStart:)` throws.
public func minimize<X, Y>(
    _ problem: StructuredBilevelProblem<X, Y>, method: some HypergradientMethod, from x0: X, y0: Y,
    optimizer: OuterOptimizer, steps: Int, projection: ((X) -> X)? = nil, warmStart: Bool = false
) throws -> StructuredOuterTrajectory<X, Y> {
    let flatProjection = projection.map { project in { (fx: Tensor) in project(x0.unflattening(fx)).flattened } }
    let record = try minimize(
        problem.flat(like: x0, y0), method: method, from: x0.flattened, y0: y0.flattened, optimizer: optimizer,
        steps: steps, projection: flatProjection, warmStart: warmStart)
    return StructuredOuterTrajectory(record: record, x: x0.unflattening(record.x), innerSolution: y0.unflattening(record.innerSolution))
}
