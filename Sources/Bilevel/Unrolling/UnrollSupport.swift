// Pieces shared by the unrolled methods (FAD, RAD, TRAD, one-stage, sign): running the inner dynamics
// with step numbers and shape checks, and the single backward loop that RAD and TRAD both use.

extension BilevelOracle {
    /// Runs the inner dynamics for `steps` steps from the state `s0`, numbering steps from `offset + 1`
    /// in errors, and checks that Ψ keeps the state's shape.
    ///
    /// - Throws: `BilevelError.nonFinite` naming the absolute inner step, `.shapeMismatch` when Ψ
    ///   changes the shape of the state.
    func runInner(
        from s0: Tensor, _ x: Tensor, steps: Int, offset: Int = 0, like y0: Tensor, keepTrajectory: Bool = false
    ) throws -> (final: Tensor, trajectory: [Tensor]) {
        let result: (final: Tensor, trajectory: [Tensor])
        do {
            result = try unroll(from: s0, x, steps: steps, like: y0, keepTrajectory: keepTrajectory)
        } catch let BilevelError.nonFinite(quantity, step) {
            throw BilevelError.nonFinite(quantity: quantity, step: step.map { $0 + offset })
        }
        guard result.final.shape == s0.shape else {
            throw BilevelError.shapeMismatch(name: "the inner state Ψ(s, x)", expected: s0.shape, actual: result.final.shape)
        }
        return result
    }
}

/// Reverse accumulation through the last `M` inner steps (Liu et al. 2021 (survey), Alg. 3; truncated form of
/// Shaban et al. 2019):
///
///     λ_T = (∂y_T/∂s_T)ᵀ ∇ᵧF(x, y_T),   g = 0,
///     for t = T … T−M+1:   g += B_tᵀ λ_t,   λ_{t−1} = A_tᵀ λ_t,
///     hypergradient = ∇ₓF(x, y_T) + g + B₀ᵀ λ_{T−M},
///
/// with `A_t = ∂Ψ/∂s`, `B_t = ∂Ψ/∂x` at `(s_{t−1}, x)` applied by one reverse-over-reverse VJP of the
/// step each (no Hessian formed). Only `M + 1` states are stored: the first `T − M` steps run without
/// recording. `M = T` is full RAD. `B₀ = ∂s_0/∂x` is the start's term when y0 depends on x
/// (`BilevelProblem.initialization`; zero otherwise); with `M < T` the undifferentiated first `T − M`
/// steps are taken as `A = I, B = 0` (the first-order approximation), so `λ_{T−M}` reaches it unchanged.
///
/// - Throws: `BilevelError.invalidSteps` unless `1 ≤ M ≤ T`, plus everything `validate` and the inner
///   loop throw.
func reverseUnrolledHypergradient(
    of problem: BilevelProblem, at x: Tensor, from y0: Tensor, truncation M: Int, method: some HypergradientMethod
) throws -> HypergradientResult {
    try problem.validate(x: x, y0: y0, for: method)
    try problem.checkStart(x, y0)
    let T = problem.innerSteps
    guard M >= 1 && M <= T else {
        throw BilevelError.invalidSteps(name: "truncation M", value: M, requirement: "1 ≤ M ≤ T = \(T)")
    }
    let oracle = BilevelOracle(problem)
    let dynamics = problem.dynamics
    return try timed(oracle) { diagnostics in
        let s0 = dynamics.initialState(y0)
        let (start, _) = try oracle.runInner(from: s0, x, steps: T - M, like: y0)
        let (sT, states) = try oracle.runInner(from: start, x, steps: M, offset: T - M, like: y0, keepTrajectory: true)
        let yT = dynamics.iterate(sT, like: y0)
        let upper = oracle.upperGradients(x, yT)
        // λ_T: the state cotangent whose iterate part is ∇ᵧF (the adjoint of the linear map s ↦ y).
        var lambda = vjp(at: sT) { s in dynamics.iterate(s, like: y0) }.pullback(upper.y)
        var g = Tensor(zeros: x.shape)
        for t in stride(from: M, through: 1, by: -1) {
            let (stateAdjoint, xAdjoint) = oracle.stepVJP(states[t - 1], x, cotangent: lambda, like: y0)
            g = g + xAdjoint
            lambda = stateAdjoint
        }
        g = g + problem.startAdjoint(x, lambda)
        diagnostics.innerSteps = T
        if M < T { diagnostics.notes.append("truncated to the last \(M) of \(T) steps") }
        return (upper.x + g, yT)
    }
}

// The x-dependent start `s_0 = initialState(y0(x))` (`BilevelProblem.initialization`): the unrolled
// methods differentiate it like one more step, `B₀ = ∂s_0/∂x` with nothing before it (Liu et al. 2021 (survey),
// eq. 16 with `Z₀ = B₀ = ∂Ψ₀(x)/∂x`; zero when y0 is a constant).
extension BilevelProblem {
    /// Checks that the start `y0` a method was given is `initialization(x)` when the problem has one.
    ///
    /// - Throws: `BilevelError.shapeMismatch` when `initialization(x)` does not have `y0`'s shape,
    ///   `.invalidArgument` naming both values when they differ.
    func checkStart(_ x: Tensor, _ y0: Tensor) throws {
        guard let initialization else { return }
        let expected = initialization(x.detached)
        guard expected.shape == y0.shape else {
            throw BilevelError.shapeMismatch(name: "initialization(x)", expected: y0.shape, actual: expected.shape)
        }
        guard expected.isApproximatelyEqual(to: y0.detached) else {
            throw BilevelError.invalidArgument(
                name: "y0", reason: "the problem's initialization gives y0(x) = \(expected) but the start passed is \(y0); start from initialization(x) (the derivative assumes it)")
        }
    }

    /// `(∂s_0/∂x)ᵀ λ` for `s_0 = dynamics.initialState(initialization(x))`, or zero without an
    /// initialization: the t = 0 term `B₀ᵀ λ₀` of RAD.
    func startAdjoint(_ x: Tensor, _ lambda: Tensor) -> Tensor {
        guard let initialization else { return Tensor(zeros: x.shape) }
        let dynamics = self.dynamics
        return vjp(at: x) { x in dynamics.initialState(initialization(x)) }.pullback(lambda)
    }

    /// `(∂s_0/∂x) ẋ`, the tangent `Z_0 ẋ` FAD starts from (zero without an initialization).
    func startTangent(_ x: Tensor, direction: Tensor, like state: Tensor) -> Tensor {
        guard let initialization else { return Tensor(zeros: state.shape) }
        let dynamics = self.dynamics
        return jvp(at: x, direction: direction) { x in dynamics.initialState(initialization(x)) }.tangent
    }
}
