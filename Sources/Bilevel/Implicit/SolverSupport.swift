// The ending shared by the fixed-iteration solvers (Neumann series, fixed point): measure the final
// residual, decide convergence against an optional tolerance, throw when strict.

extension LinearSystem {
    /// Packages `v` as a `LinearSolution` with its measured relative residual `‖H v − b‖ / ‖b‖` (one extra
    /// HVP), `converged` meaning a finite residual `≤ tolerance` (without a tolerance: a finite residual;
    /// a residual above 1, worse than `v = 0`, is noted as divergence).
    ///
    /// - Throws: `BilevelError.didNotConverge` when `strict` and the tolerance is missed.
    func finish(
        _ v: Tensor, rhs b: Tensor, iterations: Int, solver: String, tolerance: Double?, strict: Bool
    ) throws -> LinearSolution {
        let residual = relativeResidual(of: v, rhs: b)
        let converged = residual.isFinite && (tolerance.map { residual <= $0 } ?? true)
        if !converged && strict, let tolerance {
            throw BilevelError.didNotConverge(solver: solver, iterations: iterations, residual: residual, tolerance: tolerance)
        }
        var notes = ["\(solver): residual measured with one extra HVP"]
        if !(residual <= 1) {
            notes.append("\(solver): relative residual \(residual) is above 1 (worse than v = 0): the iteration diverges; reduce the step below 2/λ_max(H)")
        }
        return LinearSolution(
            solution: v, iterations: iterations, residual: residual, converged: converged, tolerance: tolerance, notes: notes)
    }
}

/// Checks a solver's count and step parameters.
func validateSolverParameters(_ solver: String, count: (name: String, value: Int), step: Double, tolerance: Double?) throws {
    guard count.value >= 1 else { throw BilevelError.invalidArgument(name: "\(solver).\(count.name)", reason: "must be ≥ 1, got \(count.value)") }
    try requirePositive("\(solver).step", step)
    if let tolerance, !(tolerance >= 0) { throw BilevelError.invalidArgument(name: "\(solver).tolerance", reason: "must be ≥ 0, got \(tolerance)") }
}

extension HessianInverseSolver {
    /// Solves `system v = b` and records the solver's iterations, residual, notes, reference error and
    /// convergence in `diagnostics` (the step every implicit method shares).
    ///
    /// - Throws: `BilevelError.didNotConverge` when `strict` and the solver missed its tolerance, and
    ///   whatever the solver throws.
    func solveRecording(_ system: LinearSystem, rhs b: Tensor, strict: Bool, into diagnostics: inout Diagnostics) throws -> Tensor {
        try requireFinite(b, "the right-hand side ∇ᵧF(x, ŷ) of the \(name) solve")
        let solution = try solve(system, rhs: b)
        diagnostics.solverIterations = solution.iterations
        diagnostics.residual = solution.residual
        diagnostics.referenceError = solution.referenceError
        diagnostics.notes += solution.notes
        try requireFinite(solution.solution, "the \(name) solution v ≈ H⁻¹∇ᵧF (relative residual \(solution.residual ?? .nan) after \(solution.iterations) iterations: the solve diverged)")
        if !solution.converged {
            diagnostics.converged = false
            if strict {
                throw BilevelError.didNotConverge(
                    solver: name, iterations: solution.iterations, residual: solution.residual ?? .nan, tolerance: solution.tolerance ?? 0)
            }
        }
        return solution.solution
    }
}

extension LinearSystem {
    /// `‖v − v_ref‖ / ‖v_ref‖` with `v_ref` from `reference` on the same system, or `nil` without one.
    func referenceError(of v: Tensor, rhs b: Tensor, reference: ConjugateGradient?) throws -> Double? {
        guard let reference else { return nil }
        let exact = try reference.solve(self, rhs: b).solution
        let norm = exact.squaredNorm().scalar.squareRoot()
        let error = (v - exact).squaredNorm().scalar.squareRoot()
        return norm > 0 ? error / norm : error
    }
}
