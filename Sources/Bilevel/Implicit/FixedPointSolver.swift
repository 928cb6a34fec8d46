/// Fixed-point (Richardson) iteration for `H v = b`, i.e. gradient descent on `½ vᵀHv − bᵀv` (Liu et al. 2021 (survey),
/// §6 — i steps of it are the first i Neumann terms — and the "FP" approximate implicit differentiation of Grazzi et al. 2020):
///
///     v₀ = 0,   v_{k+1} = v_k − α (H v_k − b),   k < iterations,
///
/// stopping early when `‖H v_k − b‖ / ‖b‖ ≤ tolerance` (the residual is free: it is the update). One HVP
/// per iteration after the first (`H v₀ = 0`), plus one to measure the final residual. Converges for `0 < α < 2/λ_max(H)` at rate
/// `1 − α λ_min`. From `v₀ = 0`, k iterations equal a k-term Neumann series; use this form when a
/// tolerance-based stop is wanted.
public struct FixedPointSolver: HessianInverseSolver, Sendable {
    /// The iteration cap (products with H).
    public var iterations: Int
    /// The step α.
    public var step: Double
    /// Stop (and count as converged) at this relative residual, or `nil` to run every iteration.
    public var tolerance: Double?
    /// Throw `BilevelError.didNotConverge` when the tolerance is missed.
    public var strict: Bool

    /// `"fixed-point"`.
    public var name: String { "fixed-point" }

    /// At most `iterations` fixed-point steps of size α.
    public init(iterations: Int, step: Double, tolerance: Double? = nil, strict: Bool = false) {
        self.iterations = iterations
        self.step = step
        self.tolerance = tolerance
        self.strict = strict
    }

    /// Iterates `v ← v − α (H v − b)` from 0 (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for `iterations < 1` or `α ≤ 0`; `.didNotConverge` when strict.
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        try validateSolverParameters("FixedPointSolver", count: ("iterations", iterations), step: step, tolerance: tolerance)
        let normB = b.squaredNorm().scalar.squareRoot()
        var v = Tensor(zeros: b.shape), done = 0
        while done < iterations {
            let r = done == 0 ? -b : system.apply(v) - b
            if let tolerance, r.squaredNorm().scalar.squareRoot() <= tolerance * normB { break }
            v = v - step * r
            done += 1
        }
        return try system.finish(v, rhs: b, iterations: done, solver: name, tolerance: tolerance, strict: strict)
    }
}

extension HessianInverseSolver where Self == FixedPointSolver {
    /// At most `iterations` fixed-point steps `v ← v − α (H v − b)` (see `FixedPointSolver`).
    public static func fixedPoint(iterations: Int, step: Double, tolerance: Double? = nil, strict: Bool = false) -> FixedPointSolver {
        FixedPointSolver(iterations: iterations, step: step, tolerance: tolerance, strict: strict)
    }
}
