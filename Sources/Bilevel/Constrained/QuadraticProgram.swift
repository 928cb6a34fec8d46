/// A strictly convex quadratic program solved exactly by a dual active-set method (Goldfarb & Idnani,
/// Math. Programming 27, 1983):
///
///     minimize ½ yᵀQy + cᵀy   subject to   E y = e,   G y ≤ h,      Q symmetric positive definite.
///
/// It starts from the unconstrained minimiser `y = −Q⁻¹c` and adds one violated constraint at a time,
/// keeping the stationarity `Q y + c + Nμ = 0` for the active normals N. Adding row p moves along
///
///     r = −M⁻¹ Nᵀ Q⁻¹ n_p,   z = −Q⁻¹ (n_p + N r),   M = Nᵀ Q⁻¹ N,
///
/// with `y += t z`, `μ += t r`, `μ_p += t`; the step t is the smaller of the full step (row p becomes
/// tight) and the partial step at which an active inequality's multiplier reaches zero (that row leaves).
/// If `z = 0` and no multiplier can shrink, row p is inconsistent with the active rows: the problem is
/// infeasible. Why this method: it needs no feasible starting point, it ends with the exact active set
/// and multipliers that the KKT hypergradient needs, it detects infeasibility, and its active rows stay
/// linearly independent. Cost per change of the active set: O(n²·|N| + |N|³) with a dense Q, so it is
/// meant for lower levels of up to a few hundred variables.
struct QuadraticProgram {
    /// `Q`, `[n · n]` row-major, symmetric positive definite.
    let quadratic: [Double]
    /// `c`, `[n]`.
    let linear: [Double]
    /// The constraints `E y = e`, `G y ≤ h`.
    let constraints: ConstraintData
    /// Relative tolerance on constraint violation.
    var feasibilityTolerance = 1e-11

    /// The solution with its multipliers (`Q y + c + Eᵀλ + Gᵀμ = 0`, `μ ≥ 0`, `μᵢ(Gy − h)ᵢ = 0`).
    struct Solution {
        /// The minimiser.
        var y: [Double]
        /// λ, one per equality row.
        var equalityMultipliers: [Double]
        /// μ, one per inequality row (zero off the active set).
        var inequalityMultipliers: [Double]
        /// Additions and removals of active rows.
        var iterations: Int
    }

    /// Solves the program (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` when Q is not positive definite, `.infeasible` naming
    ///   the row that cannot be satisfied, `.didNotConverge` if the active set cycles past its cap.
    func solve() throws -> Solution {
        let n = constraints.n, p = constraints.equalityCount, rows = p + constraints.inequalityCount
        guard let factor = CholeskyFactor(quadratic, n: n) else {
            throw BilevelError.invalidArgument(
                name: "lower-level Hessian", reason: "not positive definite: the constrained lower level must be strongly convex in y")
        }
        var y = factor.solve(linear).map { -$0 }
        var active: [ActiveRow] = [], iterations = 0
        let cap = 10 * (rows + n) + 10
        while let (index, sign) = mostViolated(y, active) {
            var added = ActiveRow(index: index, sign: sign, normal: constraints.row(index).map { sign * $0 }, inverseQNormal: [], multiplier: 0)
            added.inverseQNormal = factor.solve(added.normal)
            while true {
                iterations += 1
                guard iterations <= cap else {
                    throw BilevelError.didNotConverge(solver: "active-set QP", iterations: iterations, residual: violation(index, sign, y), tolerance: feasibilityTolerance)
                }
                let r = dualDirection(active, added)
                var z = added.inverseQNormal.map { -$0 }
                for (row, rj) in zip(active, r) { for i in 0..<n { z[i] -= rj * row.inverseQNormal[i] } }
                let curvature = -innerProduct(added.normal, z), scale = innerProduct(added.normal, added.inverseQNormal)
                var partial = Double.infinity, leaving: Int?
                for (j, row) in active.enumerated() where row.index >= p && r[j] < 0 && row.multiplier / -r[j] < partial {
                    partial = row.multiplier / -r[j]
                    leaving = j
                }
                let full = curvature > 1e-13 * scale ? violation(index, sign, y) / curvature : Double.infinity
                guard partial.isFinite || full.isFinite else {
                    throw BilevelError.infeasible(reason: "\(constraints.describe(index)) is violated by \(violation(index, sign, y)) and is a combination of the active rows \(active.map { constraints.describe($0.index) })")
                }
                let t = min(partial, full)
                if full.isFinite { for i in 0..<n { y[i] += t * z[i] } }
                for j in active.indices { active[j].multiplier += t * r[j] }
                added.multiplier += t
                if full <= partial {
                    active.append(added)
                    break
                }
                active.remove(at: leaving!)
            }
        }
        var lambda = [Double](repeating: 0, count: p), mu = [Double](repeating: 0, count: rows - p)
        for row in active {
            if row.index < p { lambda[row.index] = row.sign * row.multiplier } else { mu[row.index - p] = max(row.multiplier, 0) }
        }
        return Solution(y: y, equalityMultipliers: lambda, inequalityMultipliers: mu, iterations: iterations)
    }

    /// One active row `sign · (row of [E; G])` with `Q⁻¹` times it and its multiplier.
    private struct ActiveRow {
        let index: Int
        let sign: Double
        let normal: [Double]
        var inverseQNormal: [Double]
        var multiplier: Double
    }

    /// `r = −M⁻¹ Nᵀ Q⁻¹ n_p` for the active rows (empty when none are active).
    private func dualDirection(_ active: [ActiveRow], _ added: ActiveRow) -> [Double] {
        let q = active.count
        guard q > 0 else { return [] }
        var m = [Double](repeating: 0, count: q * q)
        for a in 0..<q { for b in 0...a {
            m[a * q + b] = innerProduct(active[a].normal, active[b].inverseQNormal)
            m[b * q + a] = m[a * q + b]
        } }
        // The active rows are linearly independent by construction, so M is positive definite.
        let rhs = active.map { innerProduct($0.normal, added.inverseQNormal) }
        guard let factor = CholeskyFactor(m, n: q) else { preconditionFailure("active-set QP: dependent active rows \(active.map { constraints.describe($0.index) })") }
        return factor.solve(rhs).map { -$0 }
    }

    /// The row to add next: the inactive equality with the largest residual if any, else the most
    /// violated inequality (violations measured against the row's scale), with the orientation (±1)
    /// that makes it a `≤` row.
    private func mostViolated(_ y: [Double], _ active: [ActiveRow]) -> (Int, Double)? {
        let isActive = Set(active.map(\.index)), p = constraints.equalityCount
        let largest = y.map(abs).max() ?? 0
        func relativeViolation(_ i: Int) -> Double {
            let s = constraints.slack(i, y)
            return (i < p ? abs(s) : s) / (feasibilityTolerance * constraints.scale(i, largest: largest))
        }
        for candidates in [0..<p, p..<(p + constraints.inequalityCount)] {
            let worst = candidates.filter { !isActive.contains($0) }.map { ($0, relativeViolation($0)) }.max { $0.1 < $1.1 }
            if let (i, v) = worst, v > 1 { return (i, i < p && constraints.slack(i, y) < 0 ? -1 : 1) }
        }
        return nil
    }

    /// `sign · slack` of row i: how far the oriented row is above its bound.
    private func violation(_ i: Int, _ sign: Double, _ y: [Double]) -> Double { sign * constraints.slack(i, y) }
}

/// `Σ aᵢ bᵢ` of two equally long sequences.
func innerProduct<A: Sequence<Double>, B: Sequence<Double>>(_ a: A, _ b: B) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
