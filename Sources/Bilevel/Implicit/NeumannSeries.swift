/// The truncated Neumann series for `H⁻¹ b` (Zhang et al. 2024, eq. 6 in its deterministic form; Liu et al. 2021 (survey), §6; Lorraine et al.
/// 2020): `H⁻¹ = α Σ_{k≥0} (I − α H)^k` for `0 < α < 2/λ_max(H)`, truncated to K terms:
///
///     u = b;  acc = b;  repeat K − 1 times { u = u − α H u;  acc += u };  v = α · acc.
///
/// K − 1 HVPs (`iterations == K − 1`), plus one to measure the reported residual. The truncation error
/// is `α Σ_{k≥K} (I − αH)^k b`, which decays like `(1 − α λ_min)^K`. Use it as a cheap, fixed-cost,
/// differentiable-friendly approximate inverse when a fixed budget matters more than accuracy.
public struct NeumannSeries: HessianInverseSolver, Sendable {
    /// The number K of series terms (K − 1 products with H).
    public var terms: Int
    /// The step α (needs `α < 2/λ_max(H)` to converge).
    public var step: Double
    /// The relative residual below which the result counts as converged, or `nil` (always converged).
    public var tolerance: Double?
    /// Throw `BilevelError.didNotConverge` when the tolerance is missed.
    public var strict: Bool

    /// `"neumann"`.
    public var name: String { "neumann" }

    /// A K-term Neumann series with step α.
    public init(terms: Int, step: Double, tolerance: Double? = nil, strict: Bool = false) {
        self.terms = terms
        self.step = step
        self.tolerance = tolerance
        self.strict = strict
    }

    /// `v = α Σ_{k<K} (I − αH)^k b` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for `K < 1` or `α ≤ 0`; `.didNotConverge` when strict.
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        try validateSolverParameters("NeumannSeries", count: ("terms", terms), step: step, tolerance: tolerance)
        // Plain arrays for u and the sum (one pass per term, no tensor per operation).
        var u = b.scalars, accumulated = u
        for _ in 1..<terms {
            let product = system.apply(Tensor(shape: b.shape, scalars: u)).scalars
            for i in u.indices {
                u[i] -= step * product[i]
                accumulated[i] += u[i]
            }
        }
        let solution = Tensor(shape: b.shape, scalars: accumulated.map { step * $0 })
        return try system.finish(solution, rhs: b, iterations: terms - 1, solver: name, tolerance: tolerance, strict: strict)
    }
}

extension HessianInverseSolver where Self == NeumannSeries {
    /// A K-term Neumann series with step α (see `NeumannSeries`).
    public static func neumannSeries(terms: Int, step: Double, tolerance: Double? = nil, strict: Bool = false) -> NeumannSeries {
        NeumannSeries(terms: terms, step: step, tolerance: tolerance, strict: strict)
    }
}
