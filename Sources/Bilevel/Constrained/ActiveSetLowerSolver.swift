/// Solves a linearly constrained lower level `min_y f(x, y)  s.t.  E y = e,  G y ≤ h` exactly, returning
/// y* with its multipliers and active set: the inputs of the KKT hypergradient.
///
/// Method: sequential quadratic programming with an exact active-set QP per iteration. At `y_k` the
/// Hessian `H_k = ∇²ᵧᵧf` is assembled from n counted HVPs and the model
///
///     min_y ½ (y − y_k)ᵀ H_k (y − y_k) + ∇ᵧf(y_k)ᵀ (y − y_k)   s.t.  E y = e,  G y ≤ h
///
/// is solved by the dual active-set method of Goldfarb & Idnani; the step `d = y_QP − y_k` is taken in
/// full the first time (which makes the iterate feasible from any `y0`) and with Armijo backtracking on f
/// afterwards (feasibility is kept, the feasible set being convex). The iteration stops when
/// `‖t d‖∞ ≤ tolerance · (1 + ‖y‖∞)`. For a quadratic f the first QP is the exact answer and the second
/// confirms it. Why not projected gradient: it finds the active set only in the limit, gives no
/// multipliers for general polyhedra and needs a projection that is itself a QP.
///
/// Cost per iteration: one gradient, n HVPs, a dense n×n Cholesky and the QP's active-set changes; meant
/// for lower levels of up to a few hundred variables that are strongly convex in y.
public struct ActiveSetLowerSolver: Sendable {
    /// The cap on SQP iterations.
    public var maxIterations: Int
    /// The step size (relative to `1 + ‖y‖∞`) below which the iteration has converged.
    public var tolerance: Double

    /// A solver with at most `maxIterations` SQP iterations, stopping at relative step `tolerance`.
    public init(maxIterations: Int = 50, tolerance: Double = 1e-12) {
        self.maxIterations = maxIterations
        self.tolerance = tolerance
    }

    /// y* and its multipliers for the lower level of `problem` (with its `constraints`) at `x`, from `y0`.
    ///
    /// - Throws: as `KKTImplicit` (missing constraints, shapes, infeasibility, NaN/Inf), and
    ///   `BilevelError.invalidArgument` for a lower Hessian that is not positive definite.
    public func solve(_ problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> ConstrainedSolution {
        let (_, data) = try KKTImplicit(solver: .exact, lowerSolver: self).prepare(problem, x, y0)
        return try solve(BilevelOracle(problem), x, from: y0, constraints: data)
    }

    /// y* and its multipliers at `x`, from `y0`, for constraints already evaluated (see the type's
    /// documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for bad parameters or a Hessian that is not positive
    ///   definite, `.infeasible` naming the row that cannot be met, `.nonFinite` for NaN/Inf iterates.
    func solve(_ oracle: BilevelOracle, _ x: Tensor, from y0: Tensor, constraints data: ConstraintData) throws -> ConstrainedSolution {
        guard maxIterations >= 1 else { throw BilevelError.invalidArgument(name: "ActiveSetLowerSolver.maxIterations", reason: "must be ≥ 1, got \(maxIterations)") }
        guard tolerance >= 0 else { throw BilevelError.invalidArgument(name: "ActiveSetLowerSolver.tolerance", reason: "must be ≥ 0, got \(tolerance)") }
        let n = data.n
        var y = y0.detached.scalars, last: QuadraticProgram.Solution?, converged = false, iterations = 0, qpIterations = 0
        while iterations < maxIterations && !converged {
            iterations += 1
            let yTensor = Tensor(y), g = oracle.lowerGradients(x, yTensor).y.scalars
            var h = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                let column = oracle.lowerHVP(x, yTensor, Tensor(shape: [n]) { $0 == i ? 1 : 0 }).scalars
                for j in 0..<n { h[j * n + i] += 0.5 * column[j]; h[i * n + j] += 0.5 * column[j] }
            }
            var c = g
            for i in 0..<n { for j in 0..<n { c[i] -= h[i * n + j] * y[j] } }
            let qp = try QuadraticProgram(quadratic: h, linear: c, constraints: data).solve()
            qpIterations += qp.iterations
            let d = zip(qp.y, y).map { $0 - $1 }
            let t = iterations == 1 ? 1 : backtrack(oracle, x, y, d, slope: innerProduct(g, d))
            y = zip(y, d).map { $0 + t * $1 }
            guard y.allSatisfy(\.isFinite) else { throw BilevelError.nonFinite(quantity: "the constrained lower iterate", step: iterations) }
            last = qp
            converged = t * (d.map(abs).max() ?? 0) <= tolerance * (1 + (y.map(abs).max() ?? 0))
        }
        return ConstrainedSolution(
            y: y, qp: last!, constraints: data, gradient: oracle.lowerGradients(x, Tensor(y)).y.scalars,
            iterations: iterations, qpIterations: qpIterations, converged: converged)
    }

    /// The Armijo step `t ∈ {1, ½, ¼, …}` with `f(y + t d) ≤ f(y) + 10⁻⁴ t ∇fᵀd + 8 ε |f(y)|` (values
    /// only, uncounted). The last term is f's rounding: near y* the decrease a Newton step promises is
    /// below what f can resolve, and without it the test would fail on noise and halve the steps that
    /// converge quadratically (measured: 11 SQP iterations instead of 6 on the box-constrained P3).
    private func backtrack(_ oracle: BilevelOracle, _ x: Tensor, _ y: [Double], _ d: [Double], slope: Double) -> Double {
        let f0 = oracle.lowerValue(x, Tensor(y)).scalar, rounding = 8 * Double.ulpOfOne * abs(f0)
        var t = 1.0
        while t > 1e-12 && oracle.lowerValue(x, Tensor(zip(y, d).map { $0 + t * $1 })).scalar > f0 + 1e-4 * t * min(slope, 0) + rounding { t /= 2 }
        return t
    }
}

/// A solution of a linearly constrained lower level with its KKT data:
/// `∇ᵧf(x, y*) + Eᵀλ + Gᵀμ = 0`, `E y* = e`, `G y* ≤ h`, `μ ≥ 0`, `μᵢ (G y* − h)ᵢ = 0`.
public struct ConstrainedSolution: Sendable {
    /// y*, shape `[n]`.
    public var y: Tensor
    /// λ, one multiplier per equality row.
    public var equalityMultipliers: Tensor
    /// μ, one multiplier per inequality row (zero off the active set).
    public var inequalityMultipliers: Tensor
    /// Inequality rows tight at y* with a positive multiplier: the active set J of the KKT system.
    public var activeInequalities: [Int]
    /// Inequality rows tight at y* whose multiplier is (numerically) zero: strict complementarity fails
    /// there, y*(x) has a kink and the KKT derivative is one-sided (they are treated as inactive).
    public var weaklyActiveInequalities: [Int]
    /// SQP iterations.
    public var iterations: Int
    /// Active-set changes summed over the QPs.
    public var qpIterations: Int
    /// `‖∇ᵧf + Eᵀλ + Gᵀμ‖∞` at y* (one extra gradient).
    public var stationarityResidual: Double
    /// Whether the SQP step fell below its tolerance within the iteration cap.
    public var converged: Bool

    /// Packages the last QP's multipliers and classifies the inequality rows at `y`.
    init(y: [Double], qp: QuadraticProgram.Solution, constraints data: ConstraintData, gradient g: [Double], iterations: Int, qpIterations: Int, converged: Bool) {
        self.y = Tensor(y)
        equalityMultipliers = Tensor(qp.equalityMultipliers)
        inequalityMultipliers = Tensor(qp.inequalityMultipliers)
        let p = data.equalityCount, largest = y.map(abs).max() ?? 0
        let multiplierScale = 1e-9 * (1 + (qp.inequalityMultipliers.map(abs).max() ?? 0))
        let tight = (0..<data.inequalityCount).filter { abs(data.slack(p + $0, y)) <= 1e-9 * data.scale(p + $0, largest: largest) }
        activeInequalities = tight.filter { qp.inequalityMultipliers[$0] > multiplierScale }
        weaklyActiveInequalities = tight.filter { qp.inequalityMultipliers[$0] <= multiplierScale }
        var residual = g
        for i in 0..<(p + data.inequalityCount) {
            let multiplier = i < p ? qp.equalityMultipliers[i] : qp.inequalityMultipliers[i - p]
            if multiplier != 0 { for (k, a) in data.row(i).enumerated() { residual[k] += multiplier * a } }
        }
        stationarityResidual = residual.map(abs).max() ?? 0
        self.iterations = iterations
        self.qpIterations = qpIterations
        self.converged = converged
    }
}
