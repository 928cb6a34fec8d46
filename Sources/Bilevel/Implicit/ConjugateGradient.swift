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
        // The iterates live in plain arrays (one pass each for the dot products and the updates, no
        // tensor per operation); only the direction p goes out as a tensor, to the product with H.
        let rhs = b.scalars, n = rhs.count
        let normB = innerProduct(rhs, rhs).squareRoot()
        var v = [Double](repeating: 0, count: n)
        guard normB > 0 else { return LinearSolution(solution: Tensor(zeros: b.shape), iterations: 0, residual: 0, converged: true, tolerance: tolerance) }
        var r = rhs, p = rhs, rr = normB * normB
        var iterations = 0, notes: [String] = []
        while iterations < maxIterations && rr.squareRoot() / normB > tolerance {
            let hp = system.apply(Tensor(shape: b.shape, scalars: p)).scalars
            iterations += 1
            let curvature = innerProduct(p, hp)
            guard curvature > 0 else {
                notes.append("cg: non-positive curvature pᵀHp = \(curvature) at iteration \(iterations): H is not positive definite")
                break
            }
            let alpha = rr / curvature
            for i in 0..<n {
                v[i] += alpha * p[i]
                r[i] -= alpha * hp[i]
            }
            let rrNext = innerProduct(r, r), beta = rrNext / rr
            for i in 0..<n { p[i] = r[i] + beta * p[i] }
            rr = rrNext
        }
        let residual = rr.squareRoot() / normB
        let converged = residual <= tolerance
        if !converged && strict {
            throw BilevelError.didNotConverge(solver: name, iterations: iterations, residual: residual, tolerance: tolerance)
        }
        return LinearSolution(
            solution: Tensor(shape: b.shape, scalars: v), iterations: iterations, residual: residual, converged: converged,
            tolerance: tolerance, notes: notes)
    }
}

extension HessianInverseSolver where Self == ConjugateGradient {
    /// Conjugate gradient from `v₀ = 0` (see `ConjugateGradient`).
    public static func conjugateGradient(maxIterations: Int = 100, tolerance: Double = 1e-10, strict: Bool = false) -> ConjugateGradient {
        ConjugateGradient(maxIterations: maxIterations, tolerance: tolerance, strict: strict)
    }
}
