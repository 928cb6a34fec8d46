// The ending shared by the fixed-iteration solvers (Neumann series, fixed point): measure the final
// residual, decide convergence against an optional tolerance, throw when strict.

extension LinearSystem {
    /// Packages `v` as a `LinearSolution` with its measured relative residual `‖H v − b‖ / ‖b‖` (one extra
    /// HVP), `converged` meaning `residual ≤ tolerance` (always true without a tolerance).
    ///
    /// - Throws: `BilevelError.didNotConverge` when `strict` and the tolerance is missed.
    func finish(
        _ v: Tensor, rhs b: Tensor, iterations: Int, solver: String, tolerance: Double?, strict: Bool
    ) throws -> LinearSolution {
        let residual = relativeResidual(of: v, rhs: b)
        let converged = tolerance.map { residual <= $0 } ?? true
        if !converged && strict {
            throw BilevelError.didNotConverge(solver: solver, iterations: iterations, residual: residual, tolerance: tolerance!)
        }
        return LinearSolution(
            solution: v, iterations: iterations, residual: residual, converged: converged,
            notes: ["\(solver): residual measured with one extra HVP"])
    }
}

/// Checks a solver's count and step parameters.
func validateSolverParameters(_ solver: String, count: (name: String, value: Int), step: Double, tolerance: Double?) throws {
    guard count.value >= 1 else { throw BilevelError.invalidArgument(name: "\(solver).\(count.name)", reason: "must be ≥ 1, got \(count.value)") }
    guard step > 0 && step.isFinite else { throw BilevelError.invalidArgument(name: "\(solver).step", reason: "must be a finite positive number, got \(step)") }
    if let tolerance, !(tolerance >= 0) { throw BilevelError.invalidArgument(name: "\(solver).tolerance", reason: "must be ≥ 0, got \(tolerance)") }
}
