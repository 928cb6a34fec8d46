/// A way to apply (an approximation of) `H⁻¹` to a vector, where `H = ∇²ᵧᵧf(x, y*)` is available only
/// through Hessian-vector products.
///
/// Implicit differentiation (seed 001 eq. 9; seed 000 eq. 5) needs `v = H⁻¹ ∇ᵧF`; every solver (conjugate
/// gradient, Neumann series, fixed point, exact dense solve, and the cheap approximations) conforms,
/// so `Implicit(solver:)` takes any of them.
public protocol HessianInverseSolver {
    /// A short name (`"cg"`, `"neumann"`, …) for tables and messages.
    var name: String { get }
    /// Approximately solves `H v = b` for the system described by `system`.
    ///
    /// - Throws: `BilevelError.didNotConverge` only when the solver is strict; otherwise the returned
    ///   `LinearSolution` reports `converged == false` with its residual.
    func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution
}

/// The linear system `H v = b` with `H = ∇²ᵧᵧf(x, y)` at a given point.
public struct LinearSystem {
    /// The oracle whose counted products the solver uses.
    public let oracle: BilevelOracle
    /// The upper-level point.
    public let x: Tensor
    /// The lower-level point (the inner solution).
    public let y: Tensor

    /// A system at `(x, y)` for the oracle's problem.
    public init(oracle: BilevelOracle, x: Tensor, y: Tensor) {
        self.oracle = oracle
        self.x = x
        self.y = y
    }

    /// `H v` by one counted Hessian-vector product.
    public func apply(_ v: Tensor) -> Tensor { oracle.lowerHVP(x, y, v) }

    /// The relative residual `‖H v − b‖ / ‖b‖` (one extra product; `‖H v‖` when `b = 0`).
    public func relativeResidual(of v: Tensor, rhs b: Tensor) -> Double {
        let r = (apply(v) - b).squaredNorm().scalar.squareRoot()
        let nb = b.squaredNorm().scalar.squareRoot()
        return nb > 0 ? r / nb : r
    }
}

/// The outcome of a linear solve.
public struct LinearSolution {
    /// The (approximate) solution `v ≈ H⁻¹ b`.
    public var solution: Tensor
    /// Iterations (products with H) the solver used; 0 for a direct method.
    public var iterations: Int
    /// The final relative residual `‖H v − b‖ / ‖b‖`, or `nil` when the solver does not compute it.
    public var residual: Double?
    /// Whether the solver met its own stopping criterion.
    public var converged: Bool
    /// Extra facts, one per line (e.g. the error against a reference solve).
    public var notes: [String]

    /// A solution from its parts.
    public init(solution: Tensor, iterations: Int, residual: Double?, converged: Bool, notes: [String] = []) {
        self.solution = solution
        self.iterations = iterations
        self.residual = residual
        self.converged = converged
        self.notes = notes
    }
}
