import Foundation

/// Implicit differentiation of a linearly constrained lower level through its KKT conditions (Dash & Ram 2023's
/// KKT implicit gradient; Zhang et al. 2024, the LC-BLO implicit gradient):
///
///     ∇F(x) = ∇ₓF − ∇²ₓᵧf · v − ∇ₓ[ λᵀE(x) v + μᵀG(x) v + w_Eᵀ(E(x) y* − e(x)) + w_Jᵀ(G_J(x) y* − h_J(x)) ],
///
///     [ H   Aᵀ ] [ v ]   [ ∇ᵧF ]
///     [ A   0  ] [ w ] = [  0  ],     H = ∇²ᵧᵧf(x, y*),   A = [E; G_J],
///
/// where y*, λ, μ come from `ActiveSetLowerSolver` and J is the active set (tight inequality rows with a
/// positive multiplier). This is the derivative of `x ↦ F(x, y*(x))` wherever strict complementarity
/// holds. The KKT system is never formed: with P the projector onto `null(A)`, `v` solves the reduced
/// system `P H P v = P ∇ᵧF` by any `HessianInverseSolver` through HVPs (see `LinearSystem`; only `.exact`
/// assembles a dense matrix), then `w = (AAᵀ)⁻¹ A (∇ᵧF − H v)` costs one more HVP and a k×k solve, and
/// the bracket's gradient is one reverse sweep through the constraint closures (zero when they do not
/// depend on x).
///
/// Cost: the lower solve (see `ActiveSetLowerSolver`), one upper gradient, the solver's HVPs plus one,
/// one mixed product, one constraint gradient. Use it for small, strongly convex lower levels with
/// linear constraints; near a kink of y*(x) (a tight row with zero multiplier, reported in the notes)
/// prefer `SmoothedImplicit`.
public struct KKTImplicit<Solver: HessianInverseSolver>: HypergradientMethod {
    /// The solver for the reduced system `P H P v = P ∇ᵧF`.
    public var solver: Solver
    /// The constrained lower-level solver.
    public var lowerSolver: ActiveSetLowerSolver
    /// Throw `BilevelError.didNotConverge` when the lower solve or the linear solve misses its tolerance.
    public var strict: Bool

    /// `"implicit-kkt-<solver>"`.
    public var name: String { "implicit-kkt-\(solver.name)" }

    /// `true`: the lower level is solved and differentiated with its constraints.
    public var honoursConstraints: Bool { true }

    /// KKT implicit differentiation with the given reduced-system solver and lower solver.
    public init(solver: Solver, lowerSolver: ActiveSetLowerSolver = ActiveSetLowerSolver(), strict: Bool = false) {
        self.solver = solver
        self.lowerSolver = lowerSolver
        self.strict = strict
    }

    /// Solves the constrained lower level from `y0` and differentiates its KKT conditions (see the
    /// type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` without `problem.constraints` or for a lower level that is
    ///   not strongly convex, `.shapeMismatch` for a `y0` that is not a vector or constraint matrices of
    ///   the wrong shape, `.infeasible`, `.degenerateActiveSet` when the tight rows are linearly
    ///   dependent, `.didNotConverge` when strict, `.nonFinite`.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult {
        let (constraints, data) = try prepare(problem, x, y0)
        let oracle = BilevelOracle(problem)
        return try timed(oracle) { diagnostics in
            let lower = try lowerSolver.solve(oracle, x, from: y0, constraints: data)
            diagnostics.innerSteps = lower.iterations
            diagnostics.notes.append(
                "lower level: \(lower.iterations) SQP iterations, \(lower.qpIterations) active-set changes, stationarity residual \(lower.stationarityResidual), active inequality rows \(lower.activeInequalities)")
            if !lower.weaklyActiveInequalities.isEmpty {
                diagnostics.notes.append(
                    "inequality rows \(lower.weaklyActiveInequalities) are tight with a zero multiplier (no strict complementarity): y*(x) has a kink there and this is the one-sided derivative with those rows inactive; SmoothedImplicit (SIGD) smooths it")
            }
            if !lower.converged {
                diagnostics.converged = false
                if strict {
                    throw BilevelError.didNotConverge(
                        solver: "active-set lower solver", iterations: lower.iterations, residual: lower.stationarityResidual, tolerance: lowerSolver.tolerance)
                }
            }
            return (try kktTerm(oracle, x, lower, constraints, data, &diagnostics), lower.y)
        }
    }

    /// The KKT hypergradient at a lower solution computed earlier (by `ActiveSetLowerSolver.solve`), with
    /// no lower-level work: the reduced solve, one mixed product and the constraint gradient.
    ///
    /// - Throws: as `hypergradient(of:at:from:)`, except for the lower solve's errors.
    public func hypergradient(of problem: BilevelProblem, at x: Tensor, lowerSolution lower: ConstrainedSolution) throws -> HypergradientResult {
        let (constraints, data) = try prepare(problem, x, lower.y)
        let oracle = BilevelOracle(problem)
        return try timed(oracle) { diagnostics in (try kktTerm(oracle, x, lower, constraints, data, &diagnostics), lower.y) }
    }

    /// Checks the problem and evaluates its constraints at `x`.
    func prepare(_ problem: BilevelProblem, _ x: Tensor, _ y0: Tensor) throws -> (LinearConstraints, ConstraintData) {
        guard let constraints = problem.constraints else {
            throw BilevelError.invalidArgument(
                name: "problem.constraints", reason: "\(name) needs linear constraints on y; for an unconstrained lower level use Implicit")
        }
        guard y0.rank == 1 else { throw BilevelError.shapeMismatch(name: "y0 (a constrained lower variable must be a vector)", expected: [y0.count], actual: y0.shape) }
        try problem.validate(x: x, y0: y0, for: self)
        return (constraints, try constraints.evaluate(at: x, count: y0.count))
    }

    /// The KKT hypergradient at the lower solution (see the type's documentation).
    private func kktTerm(
        _ oracle: BilevelOracle, _ x: Tensor, _ lower: ConstrainedSolution, _ constraints: LinearConstraints,
        _ data: ConstraintData, _ diagnostics: inout Diagnostics
    ) throws -> Tensor {
        let y = lower.y, p = data.equalityCount, q = data.inequalityCount
        let activeRows = Array(0..<p) + lower.activeInequalities.map { p + $0 }
        let tightRows = activeRows + lower.weaklyActiveInequalities.map { p + $0 }
        if tightRows.count > activeRows.count {
            _ = try NullSpace(rows: data.matrix(rows: tightRows.sorted()), names: tightRows.sorted().map(data.describe))
        }
        let a = data.matrix(rows: activeRows)
        let system = LinearSystem(oracle: oracle, x: x, y: y, nullSpace: try NullSpace(rows: a, names: activeRows.map(data.describe)))
        let upper = oracle.upperGradients(x, y)
        let v = try solver.solveRecording(system, rhs: system.project(upper.y), strict: strict, into: &diagnostics)
        var adjoint = [Double](repeating: 0, count: p + q)
        if !activeRows.isEmpty {
            let gram = matmul(a, a, transposeA: false, transposeB: true)
            let w = choleskySolve(gram, matmul(a, upper.y - oracle.lowerHVP(x, y, v)))!
            for (row, value) in zip(activeRows, w.scalars) { adjoint[row] = value }
        }
        let (lambda, mu) = (lower.equalityMultipliers, lower.inequalityMultipliers)
        let (adjointE, adjointG) = (Tensor(Array(adjoint[..<p])), Tensor(Array(adjoint[p...])))
        let correction = oracle.constraintGradient(x) { x in
            var term = Tensor(0)
            if let equality = constraints.equality {
                let (e, eRhs) = equality(x)
                term = term + dot(lambda, matmul(e, v)) + dot(adjointE, matmul(e, y) - eRhs)
            }
            if let inequality = constraints.inequality {
                let (g, gRhs) = inequality(x)
                term = term + dot(mu, matmul(g, v)) + dot(adjointG, matmul(g, y) - gRhs)
            }
            return term
        }
        return upper.x - oracle.lowerMixedProduct(x, y, v) - correction
    }
}

/// Sendable when its solver is (every solver of the package is).
extension KKTImplicit: Sendable where Solver: Sendable {}
