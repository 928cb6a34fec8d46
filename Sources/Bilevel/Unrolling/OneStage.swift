/// The one-stage hypergradient (Liu et al. 2021 (survey), eqs. 21–23; the DARTS approximation): differentiate one
/// gradient step `y_1 = y_0 − η ∇ᵧf(x, y_0)` and replace its mixed second-order term by a central
/// difference of first-order gradients:
///
///     ∇F(x) ≈ ∇ₓF(x, y_1) − η · [∇ₓf(x, y⁺) − ∇ₓf(x, y⁻)] / 2ε,   y± = y_0 ± ε ∇ᵧF(x, y_1),
///
/// which approximates `∇ₓF − η ∇²ₓᵧf(x, y_0) ∇ᵧF`, the exact derivative of `x ↦ F(x, y_1(x))`, with error
/// O(ε²) (the difference is exact when `∇ₓf` is quadratic in y).
///
/// Cost: four gradients (`counts.gradients == 4`), no second-order products; memory O(|y|). Use it when
/// second-order products are unavailable or too expensive and a short-horizon estimate suffices.
/// Needs `.gradientDescent` inner dynamics; `problem.innerSteps` is not used (always one step).
public struct OneStage: HypergradientMethod, Sendable {
    /// The difference step ε along `∇ᵧF`, or `nil` for `ε = 0.01 / ‖∇ᵧF‖` (so `‖y± − y_0‖ = 0.01`).
    public var epsilon: Double?

    /// `"one-stage"`.
    public var name: String { "one-stage" }

    /// The one-stage estimate with difference step `epsilon` (see `epsilon`).
    public init(epsilon: Double? = nil) { self.epsilon = epsilon }

    /// The one-stage hypergradient at `x` from `y0` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for non-gradient-descent dynamics, an x-dependent start
    ///   (`initialization`) or `ε ≤ 0`,
    ///   `.nonFinite` if the step overflows, plus what `validate` throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try problem.validate(x: x, y0: y0, for: self)
        guard case let .gradientDescent(eta) = problem.dynamics else {
            throw BilevelError.invalidArgument(name: "OneStage dynamics", reason: "the one-stage estimate needs .gradientDescent inner dynamics, got \(problem.dynamics)")
        }
        guard problem.initialization == nil else {
            throw BilevelError.invalidArgument(name: "OneStage with BilevelProblem.initialization", reason: "the one-stage estimate treats y0 as a constant, but this problem's start depends on x; use ReverseUnroll or FirstOrderUnroll, which include ∂y0/∂x")
        }
        if let epsilon, !(epsilon > 0) { throw BilevelError.invalidArgument(name: "OneStage.epsilon", reason: "must be > 0, got \(epsilon)") }
        let oracle = BilevelOracle(problem)
        return try timed(oracle) { diagnostics in
            let y1 = y0.detached - eta * oracle.lowerGradients(x, y0).y
            guard !y1.hasNonFinite else { throw BilevelError.nonFinite(quantity: "the inner iterate", step: 1) }
            let upper = oracle.upperGradients(x, y1)
            try requireFinite(upper.y, "∇ᵧF(x, y₁)")
            let norm = upper.y.squaredNorm().scalar.squareRoot()
            diagnostics.innerSteps = 1
            guard norm > 0 else { return (upper.x, y1) }
            let eps = epsilon ?? 0.01 / norm
            let plus = oracle.lowerGradients(x, y0 + eps * upper.y).x
            let minus = oracle.lowerGradients(x, y0 - eps * upper.y).x
            diagnostics.notes.append("central-difference step ε = \(eps)")
            return (upper.x - (eta / (2 * eps)) * (plus - minus), y1)
        }
    }
}
