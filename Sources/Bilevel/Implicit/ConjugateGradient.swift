/// Conjugate gradient for `H v = b` with `H = ∇²ᵧᵧf` symmetric positive definite, from `v₀ = 0`, no
/// preconditioner (Liu et al. 2021 (survey), Alg. 4, the CG variant of implicit differentiation):
///
///     r₀ = p₀ = b;  αₖ = ‖rₖ‖² / pₖᵀ H pₖ;  vₖ₊₁ = vₖ + αₖ pₖ;  rₖ₊₁ = rₖ − αₖ H pₖ;
///     pₖ₊₁ = rₖ₊₁ + (‖rₖ₊₁‖² / ‖rₖ‖²) pₖ,
///
/// stopping when `‖rₖ‖ / ‖b‖ ≤ tolerance` or after `maxIterations` products with H. One HVP per
/// iteration; the reported residual is the recursive `‖rₖ‖ / ‖b‖` (no extra product). Stops early,
/// unconverged, with a note if it meets non-positive curvature `pᵀHp ≤ 0` (H not positive definite).
public struct ConjugateGradient: HessianInverseSolver, Sendable {
    /// The iteration cap (products with H).
    public var maxIterations: Int
    /// The relative residual `‖H v − b‖ / ‖b‖` at which it stops.
    public var tolerance: Double
    /// Throw `BilevelError.didNotConverge` instead of returning an unconverged solution.
    public var strict: Bool

    /// `"cg"`.
    public var name: String { "cg" }

    /// CG with at most `maxIterations` products, stopping at relative residual `tolerance`.
    public init(maxIterations: Int = 100, tolerance: Double = 1e-10, strict: Bool = false) {
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.strict = strict
    }

    /// Solves `H v = b` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for `maxIterations < 1` or a negative tolerance, `.nonFinite`
    ///   for a right-hand side with NaN/Inf;
    ///   `.didNotConverge` when strict and the cap is hit above the tolerance.
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        guard maxIterations >= 1 else { throw BilevelError.invalidArgument(name: "ConjugateGradient.maxIterations", reason: "must be ≥ 1, got \(maxIterations)") }
        guard tolerance >= 0 else { throw BilevelError.invalidArgument(name: "ConjugateGradient.tolerance", reason: "must be ≥ 0, got \(tolerance)") }
        try requireFinite(b, "the right-hand side b of the cg solve")
        let normB = b.squaredNorm().scalar.squareRoot()
        var v = Tensor(zeros: b.shape)
        guard normB > 0 else { return LinearSolution(solution: v, iterations: 0, residual: 0, converged: true, tolerance: tolerance) }
        var r = b, p = b, rr = normB * normB
        var iterations = 0, notes: [String] = []
        while iterations < maxIterations && rr.squareRoot() / normB > tolerance {
            let hp = system.apply(p)
            iterations += 1
            let curvature = dot(p, hp).scalar
            guard curvature > 0 else {
                notes.append("cg: non-positive curvature pᵀHp = \(curvature) at iteration \(iterations): H is not positive definite")
                break
            }
            let alpha = rr / curvature
            v = v + alpha * p
            r = r - alpha * hp
            let rrNext = r.squaredNorm().scalar
            p = r + (rrNext / rr) * p
            rr = rrNext
        }
        let residual = rr.squareRoot() / normB
        let converged = residual <= tolerance
        if !converged && strict {
            throw BilevelError.didNotConverge(solver: name, iterations: iterations, residual: residual, tolerance: tolerance)
        }
        return LinearSolution(solution: v, iterations: iterations, residual: residual, converged: converged, tolerance: tolerance, notes: notes)
    }
}

extension HessianInverseSolver where Self == ConjugateGradient {
    /// Conjugate gradient from `v₀ = 0` (see `ConjugateGradient`).
    public static func conjugateGradient(maxIterations: Int = 100, tolerance: Double = 1e-10, strict: Bool = false) -> ConjugateGradient {
        ConjugateGradient(maxIterations: maxIterations, tolerance: tolerance, strict: strict)
    }
}
