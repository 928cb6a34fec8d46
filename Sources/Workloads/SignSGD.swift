import Bilevel

extension RidgeWorkload {
    /// P5 of `Docs/workloads.md`: the P1 data (use size (200, 20)) with the sign-SGD lower level
    /// `w_{t+1} = w_t − 0.01 sign(∇_w f(w_t, x))`, `w_0 = 0`, T = 100, and the upper objective
    /// `F(x, w) = 0.5/m ‖C w − dv‖² + 0.01 ‖x‖²`. The unrolled hypergradient is the direct term
    /// `∂F/∂x = 0.02 x` since `sign` has zero derivative.
    public func signProblem(steps: Int = 100, beta: Double = 0.01) -> BilevelProblem {
        BilevelProblem(
            upper: { x, w in upper(x, w) + 0.01 * x.squaredNorm() }, lower: lower,
            dynamics: .signGradientDescent(step: beta), innerSteps: steps)
    }
}
