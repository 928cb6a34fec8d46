import Foundation

/// Implicit differentiation at the inner solution (Liu et al. 2021 (survey), eq. 31 and Alg. 4; Zhang et al. 2024, eqs. 4–5 and Algorithm 1):
///
///     ∇F(x) ≈ ∇ₓF(x, ŷ) − ∇²ₓᵧf(x, ŷ) · v,   v ≈ H⁻¹ ∇ᵧF(x, ŷ),   H = ∇²ᵧᵧf(x, ŷ),
///
/// where ŷ is the inner solution and `v` comes from any `HessianInverseSolver` (CG, Neumann, fixed
/// point, exact dense solve, …), followed by one mixed product.
///
/// Inner solve: the problem's dynamics run from `y0` for `maxInnerSteps` steps (default T =
/// `problem.innerSteps`). With `innerTolerance` set, `‖∇ᵧf(x, y_t)‖₂` is checked after every step (one
/// counted gradient each) and the loop stops as soon as it is `≤ innerTolerance`; without it exactly
/// the step budget runs and no gradient is spent. Alternatively `hypergradient(of:at:innerSolution:)`
/// takes a given ŷ (e.g. w* from Newton) and only does the linear solve.
///
/// Cost: the inner steps, one upper gradient, the solver's HVPs, one mixed product; memory O(|y|) for
/// the iterative solvers. Exact when ŷ = y*(x) and the solve is exact; use it when the inner problem is
/// solved accurately, independent of how.
public struct Implicit<Solver: HessianInverseSolver>: HypergradientMethod {
    /// The linear solver for `v = H⁻¹ ∇ᵧF`.
    public var solver: Solver
    /// Stop the inner loop when `‖∇ᵧf‖₂ ≤ innerTolerance` (checked every step), or `nil` to run the budget.
    public var innerTolerance: Double?
    /// The inner step budget, or `nil` for `problem.innerSteps`.
    public var maxInnerSteps: Int?
    /// Throw `BilevelError.didNotConverge` when the inner loop misses `innerTolerance` or the solver misses
    /// its own tolerance, instead of reporting `converged == false`.
    public var strict: Bool

    /// `"implicit-<solver>"`.
    public var name: String { "implicit-\(solver.name)" }

    /// Implicit differentiation with the given solver and inner-loop stopping rule.
    public init(solver: Solver, innerTolerance: Double? = nil, maxInnerSteps: Int? = nil, strict: Bool = false) {
        self.solver = solver
        self.innerTolerance = innerTolerance
        self.maxInnerSteps = maxInnerSteps
        self.strict = strict
    }

    /// Runs the inner dynamics from `y0`, then the implicit formula at the final iterate.
    ///
    /// - Throws: `BilevelError.invalidSteps` (budget < 1), `.nonFinite` naming the inner step,
    ///   `.didNotConverge` when strict, and whatever the solver throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        let budget = maxInnerSteps ?? problem.innerSteps
        var checked = problem
        checked.innerSteps = budget
        try checked.validate(x: x, y0: y0, for: self)
        if let innerTolerance, !(innerTolerance >= 0) {
            throw BilevelError.invalidArgument(name: "innerTolerance", reason: "must be ≥ 0, got \(innerTolerance)")
        }
        let oracle = BilevelOracle(problem)
        let dynamics = problem.dynamics
        return try timed(oracle) { diagnostics in
            var state = dynamics.initialState(y0), steps = 0
            if let innerTolerance {
                var gradientNorm = Double.infinity
                while steps < budget && gradientNorm > innerTolerance {
                    state = try oracle.runInner(from: state, x, steps: 1, offset: steps, like: y0).final
                    steps += 1
                    gradientNorm = oracle.lowerGradients(x, dynamics.iterate(state, like: y0)).y.squaredNorm().scalar.squareRoot()
                }
                diagnostics.notes.append("inner ‖∇ᵧf‖ = \(gradientNorm) after \(steps) steps (tolerance \(innerTolerance))")
                if gradientNorm > innerTolerance {
                    diagnostics.converged = false
                    if strict {
                        throw BilevelError.didNotConverge(solver: "inner dynamics", iterations: steps, residual: gradientNorm, tolerance: innerTolerance)
                    }
                }
            } else {
                state = try oracle.runInner(from: state, x, steps: budget, like: y0).final
                steps = budget
            }
            diagnostics.innerSteps = steps
            let y = dynamics.iterate(state, like: y0)
            return (try implicitTerm(oracle, x, y, &diagnostics), y)
        }
    }

    /// The implicit hypergradient at a given inner solution ŷ (no inner iterations): one upper gradient,
    /// the linear solve and one mixed product.
    ///
    /// - Throws: `BilevelError.emptyTensor`, `.nonFinite` for bad `x` or ŷ,
    ///   `.didNotConverge` when strict, and whatever the solver throws.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, innerSolution y: Tensor) throws -> HypergradientResult {
        guard x.count > 0 else { throw BilevelError.emptyTensor(name: "x") }
        guard y.count > 0 else { throw BilevelError.emptyTensor(name: "innerSolution") }
        guard !x.hasNonFinite else { throw BilevelError.nonFinite(quantity: "x", step: nil) }
        guard !y.hasNonFinite else { throw BilevelError.nonFinite(quantity: "innerSolution", step: nil) }
        try problem.requireConstraintSupport(by: self)
        let oracle = BilevelOracle(problem)
        return try timed(oracle) { diagnostics in (try implicitTerm(oracle, x, y.detached, &diagnostics), y) }
    }

    /// `∇ₓF − ∇²ₓᵧf · H⁻¹ ∇ᵧF` at `(x, y)`, recording the solver's state in `diagnostics`.
    private func implicitTerm(_ oracle: BilevelOracle, _ x: Tensor, _ y: Tensor, _ diagnostics: inout Diagnostics) throws -> Tensor {
        let upper = oracle.upperGradients(x, y)
        let v = try solver.solveRecording(LinearSystem(oracle: oracle, x: x, y: y), rhs: upper.y, strict: strict, into: &diagnostics)
        return upper.x - oracle.lowerMixedProduct(x, y, v)
    }
}

/// Sendable when its solver is (every solver of the package is).
extension Implicit: Sendable where Solver: Sendable {}
