/// The first-order unrolled hypergradient: the inner loop runs, but the dependence of `y_T` on `x` is
/// dropped (all `A_t`, `B_t` terms of Liu et al. 2021 (survey) eq. 16 are ignored), leaving the direct term
///
///     ∇F(x) ≈ ∇ₓF(x, y_T).
///
/// This is first-order MAML's meta-gradient (Finn et al. 2017, FO-MAML, with the displacement form of
/// the adaptation problem) and the exact unrolled derivative for sign inner steps (see `SignUnroll`);
/// for other dynamics it is a biased but cheap estimate.
///
/// Cost: T inner steps and one upper gradient, no products; memory O(|y|).
public struct FirstOrderUnroll: HypergradientMethod, Sendable {
    /// `"first-order"`.
    public var name: String { "first-order" }

    /// The first-order unrolled hypergradient.
    public init() {}

    /// Runs the T inner steps from `y0` on constants and returns `∇ₓF(x, y_T)` and `y_T`.
    ///
    /// - Throws: `BilevelError.nonFinite` naming the inner step, plus what `validate` throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try problem.validate(x: x, y0: y0, for: self)
        let oracle = BilevelOracle(problem), dynamics = problem.dynamics
        return try timed(oracle) { diagnostics in
            let sT = try oracle.runInner(from: dynamics.initialState(y0), x, steps: problem.innerSteps, like: y0).final
            let yT = dynamics.iterate(sT, like: y0)
            diagnostics.innerSteps = problem.innerSteps
            return (oracle.upperGradients(x, yT).x, yT)
        }
    }
}
