/// Forward-mode differentiation of the unrolled inner loop (FAD; Liu et al. 2021 (survey), eqs. 15–17 and Alg. 2):
///
///     Z_0 = ∂s_0/∂x,   Z_t = A_t Z_{t−1} + B_t,   ∇F(x) ≈ ∇ₓF(x, y_T) + Z_Tᵀ ∇ᵧF(x, y_T),
///
/// where `Z_t = ∂s_t/∂x` is carried as one state tangent per coordinate of x and `A_t Z + B_t` of column
/// i is one JVP of the step in the direction `(Z_i, e_i)`; the y part of each column is read through the
/// (linear) `dynamics.iterate`. `Z_0` is zero unless y0 depends on x (`BilevelProblem.initialization`),
/// when its columns are JVPs of `x ↦ s_0(x)`. It is the exact derivative of `x ↦ F(x, y_T(x))`, equal to RAD.
///
/// Cost: T steps and `d·T` step tangents for `d = x.count` (`counts.jvps == d·T`; with staged derivatives
/// the d tangents of a step are one replay of the tangent program batched over the columns of Z,
/// `BilevelOracle.stepTangents`), one upper gradient; memory
/// O(d·|s|) independent of T (the trajectory is never stored). Use it when x has few coordinates and T
/// is long (the hyperparameter case), where RAD's O(T·|s|) memory is the limit.
public struct ForwardUnroll: HypergradientMethod, Sendable {
    /// `"FAD"`.
    public var name: String { "FAD" }

    /// The forward unroll over `problem.innerSteps` steps.
    public init() {}

    /// `∇ₓF(x, y_T) + Z_Tᵀ ∇ᵧF(x, y_T)` by forward propagation (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidSteps` (T < 1), `.nonFinite` naming the inner step,
    ///   `.shapeMismatch` when Ψ changes the state's shape.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        try problem.validate(x: x, y0: y0, for: self)
        try problem.checkStart(x, y0)
        let oracle = BilevelOracle(problem)
        let dynamics = problem.dynamics, d = x.count
        return try timed(oracle) { diagnostics in
            var state = dynamics.initialState(y0)
            let basis = Tensor(shape: [d] + x.shape) { $0 / d == $0 % d ? 1 : 0 }
            let starts = (0..<d).map { problem.startTangent(x, direction: basis[$0], like: state) }
            var columns = Tensor(shape: [d] + state.shape, scalars: starts.flatMap(\.scalars))
            for t in 1...problem.innerSteps {
                let next = oracle.step(state, x, like: y0)
                columns = oracle.stepTangents(state, x, columns: columns, basis: basis, like: y0)
                guard next.shape == state.shape else {
                    throw BilevelError.shapeMismatch(name: "the inner state Ψ(s, x)", expected: state.shape, actual: next.shape)
                }
                guard !next.hasNonFinite else { throw BilevelError.nonFinite(quantity: "the inner iterate", step: t) }
                state = next.detached
            }
            let yT = dynamics.iterate(state, like: y0)
            let upper = oracle.upperGradients(x, yT)
            let implicitPart = (0..<d).map { dot(upper.y, dynamics.iterate(columns[$0], like: y0)).scalar }
            diagnostics.innerSteps = problem.innerSteps
            return (upper.x + Tensor(shape: x.shape, scalars: implicitPart), yT)
        }
    }
}
