/// The Euclidean projection onto the feasible set `Y(x) = {y : E(x) y = e(x), G(x) y ≤ h(x)}` of a
/// problem's `LinearConstraints` at one `x`, for projected-gradient methods (Shen & Chen 2023 project onto the
/// lower feasible set for constrained lower levels; `PBGD` uses it):
///
///     Π(p) = argmin_{y ∈ Y(x)} ½ ‖y − p‖²,
///
/// solved exactly as the quadratic program with `Q = I`, `c = −p` (`QuadraticProgram`), which also
/// returns its multipliers: `Π(p) − p + Eᵀλ + Gᵀμ = 0`. At a fixed point `z = Π(z − η ∇ᵧf(x, z))` of
/// projected gradient descent these are η times the KKT multipliers of `min_{y ∈ Y(x)} f(x, y)`, which is
/// how `valueGradientCorrection` obtains the constraint part of Danskin's `∇v(x)`.
struct FeasibleProjection {
    /// The constraint closures (differentiated in x by `valueGradientCorrection`).
    let constraints: LinearConstraints
    /// The constraint data at x.
    let data: ConstraintData

    /// The projection onto `Y(x)` for a lower variable shaped like `y0`.
    ///
    /// - Throws: `BilevelError.shapeMismatch` when `y0` is not a vector or a constraint matrix has the
    ///   wrong shape, `.nonFinite` for NaN/Inf constraint entries.
    init(_ constraints: LinearConstraints, at x: Tensor, like y0: Tensor) throws {
        guard y0.rank == 1 else {
            throw BilevelError.shapeMismatch(name: "y0 (a constrained lower variable must be a vector)", expected: [y0.count], actual: y0.shape)
        }
        self.constraints = constraints
        data = try constraints.evaluate(at: x, count: y0.count)
    }

    /// `Π(p)` with the multipliers `(λ, μ)` of the projection program.
    ///
    /// - Throws: `BilevelError.infeasible` when `Y(x)` is empty.
    func projectWithMultipliers(_ p: Tensor) throws -> (y: Tensor, equality: Tensor, inequality: Tensor) {
        let n = data.n
        let solution = try QuadraticProgram(quadratic: identityMatrix(n).scalars, linear: p.scalars.map { -$0 }, constraints: data).solve()
        return (Tensor(solution.y), Tensor(solution.equalityMultipliers), Tensor(solution.inequalityMultipliers))
    }

    /// `Π(p)`.
    ///
    /// - Throws: `BilevelError.infeasible` when `Y(x)` is empty.
    func project(_ p: Tensor) throws -> Tensor { try projectWithMultipliers(p).y }

    /// The constraint part of Danskin's gradient of the value function `v(x) = min_{y ∈ Y(x)} f(x, y)` at
    /// its (approximate) minimiser `z`: `∇ₓ[λᵀ(E(x) z − e(x)) + μᵀ(G(x) z − h(x))]` with the multipliers
    /// `(λ, μ)` of `z = Π(z − η ∇ᵧf(x, z))` divided by η (one gradient of f, one projection, one reverse
    /// sweep through the constraint closures; zero when they do not depend on x).
    ///
    /// - Throws: `BilevelError.infeasible` when `Y(x)` is empty.
    func valueGradientCorrection(_ oracle: BilevelOracle, _ x: Tensor, at z: Tensor, step eta: Double) throws -> Tensor {
        let (_, lambdaScaled, muScaled) = try projectWithMultipliers(z - eta * oracle.lowerGradients(x, z).y)
        let lambda = lambdaScaled / eta, mu = muScaled / eta
        return oracle.constraintGradient(x) { x in
            var term = Tensor(0)
            if let equality = constraints.equality {
                let (e, rhs) = equality(x)
                term = term + dot(lambda, matmul(e, z) - rhs)
            }
            if let inequality = constraints.inequality {
                let (g, rhs) = inequality(x)
                term = term + dot(mu, matmul(g, z) - rhs)
            }
            return term
        }
    }
}
