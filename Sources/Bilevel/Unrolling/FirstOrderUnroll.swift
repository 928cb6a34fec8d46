/// The first-order unrolled hypergradient: the inner loop runs, but the dependence of `y_T` on `x` is
/// dropped (all `A_t`, `B_t` terms of Liu et al. 2021 (survey) eq. 16 are ignored), leaving the direct term
/// and the start's term
///
///     ∇F(x) ≈ ∇ₓF(x, y_T) + (∂s_0/∂x)ᵀ (∂y_T/∂s_T)ᵀ ∇ᵧF(x, y_T),
///
/// i.e. every inner step taken as `A_t = I, B_t = 0`; the second term is zero unless y0 depends on x
/// (`BilevelProblem.initialization`), and with MAML's `y0 = θ` it makes the estimate `∇_{θ'}L_query(θ')`.
///
/// This is first-order MAML's meta-gradient (Finn et al. 2017, FO-MAML, with `y0 = θ` as above) and the
/// exact unrolled derivative for sign inner steps (see `SignUnroll`); for other dynamics it is a biased but cheap estimate.
///
/// Cost: T inner steps and one upper gradient, no products; memory O(|y|).
public struct FirstOrderUnroll: HypergradientMethod, Sendable {
    /// `"first-order"`.
    public var name: String { "first-order" }

    /// The first-order unrolled hypergradient.
    public init() {}

    /// Runs the T inner steps from `y0` on constants and returns the estimate above and `y_T`.
    ///
    /// - Throws: `BilevelError.nonFinite` naming the inner step, plus what `validate` and the start
    ///   check throw.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try problem.validate(x: x, y0: y0, for: self)
        try problem.checkStart(x, y0)
        let oracle = BilevelOracle(problem), dynamics = problem.dynamics
        return try timed(oracle) { diagnostics in
            let sT = try oracle.runInner(from: dynamics.initialState(y0), x, steps: problem.innerSteps, like: y0).final
            let yT = dynamics.iterate(sT, like: y0)
            diagnostics.innerSteps = problem.innerSteps
            let upper = oracle.upperGradients(x, yT)
            guard problem.initialization != nil else { return (upper.x, yT) }
            let lambda = vjp(at: sT) { s in dynamics.iterate(s, like: y0) }.pullback(upper.y)
            return (upper.x + problem.startAdjoint(x, lambda), yT)
        }
    }
}
