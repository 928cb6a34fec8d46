/// The hypergradient of an unrolled sign-gradient inner loop (sign-GU; Zhang et al. 2024, signGD rule and eq. 13; Dash & Ram 2023, Alg. 1;
/// Sign-MAML): with `y_t = y_{t−1} − η sign(∇ᵧf(x, y_{t−1}))` the derivative of `sign` is zero almost
/// everywhere, so `A_t = I` and `B_t = 0` and the unrolled hypergradient reduces to the direct term
///
///     ∇F(x) = ∇ₓF(x, y_T).
///
/// Cost: T inner steps and one upper gradient (`counts.gradients == 1`), no products; memory O(|y|).
/// Use it for sign-SGD inner loops, where it is the exact (first-order) unrolled derivative. Needs
/// `.signGradientDescent` dynamics: for other dynamics the same term is `FirstOrderUnroll`, a biased
/// first-order estimate.
public struct SignUnroll: HypergradientMethod, Sendable {
    /// `"sign-GU"`.
    public var name: String { "sign-GU" }

    /// The sign-unrolled hypergradient.
    public init() {}

    /// Runs the T sign steps from `y0` and returns `∇ₓF(x, y_T)` and `y_T`.
    ///
    /// - Throws: `BilevelError.invalidArgument` for dynamics other than `.signGradientDescent`,
    ///   `.nonFinite` naming the inner step, plus what `validate` throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        guard case .signGradientDescent = problem.dynamics else {
            throw BilevelError.invalidArgument(name: "SignUnroll dynamics", reason: "needs .signGradientDescent inner dynamics, got \(problem.dynamics)")
        }
        try problem.validate(x: x, y0: y0, for: self)
        return try FirstOrderUnroll().hypergradient(of: problem, at: x, from: y0)
    }
}
