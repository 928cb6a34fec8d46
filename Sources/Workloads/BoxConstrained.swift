import Bilevel

// Box-constrained variants of P1 and P3 for the constrained (KKT, SIGD) methods: the same data and
// objectives, with bounds chosen so that some constraints are active at x0. With the active set read off
// the constrained solution w*, the hypergradient has the closed form of the unconstrained problem with
// `v = H⁻¹∇F` replaced by the reduced solve on the free coordinates F (v = 0 on the active ones):
// `v_F = H_FF⁻¹ (∇F)_F`, since the active coordinates are pinned to constant bounds.

extension RidgeWorkload {
    /// P1 with the box `0 ≤ wⱼ ≤ bound` (default 0.5: at x0 of (200, 20), 11 coordinates sit at 0,
    /// 5 at 0.5 and 4 are free), and the per-row lower losses `lowerBatch` (for WoodFisher).
    public func boxProblem(bound: Double = 0.5) -> BilevelProblem {
        var problem = problem(steps: 1)
        problem.constraints = .box(lower: 0, upper: bound, count: d)
        problem.lowerBatch = lowerBatch
        problem.lowerSampleCount = n
        return problem
    }

    /// The box-constrained hypergradient `dF/dxⱼ = −exp(xⱼ) wⱼ vⱼ` at the constrained solution `w`, with
    /// `v_F = H_FF⁻¹ (∇F(w))_F` on the free set F (coordinates strictly inside `[0, bound]`), `v = 0` off it.
    public func boxExactHypergradient(_ x: Tensor, at w: Tensor, bound: Double = 0.5) -> Tensor {
        let v = reducedSolve(hessian(x), matmul(matmul(c, w) - dv, c) / Double(m), free: freeCoordinates(w, lower: 0, upper: bound))
        return -exp(x) * w * v
    }
}

extension HyperCleaningWorkload {
    /// P3 with the box `−bound ≤ wⱼ ≤ bound` (default 0.3, active for some coordinates at x0).
    public func boxProblem(bound: Double = 0.3) -> BilevelProblem {
        var problem = problem(steps: 1)
        problem.constraints = .box(lower: -bound, upper: bound, count: d)
        return problem
    }

    /// The box-constrained P3 hypergradient `dF/dxᵢ = −(1/n) σ'(xᵢ) ℓ'(zᵢ) ytrᵢ (Xᵢ·v)` at the constrained
    /// solution `w`, with `v_F = H_FF⁻¹ (∇F(w))_F` on the free coordinates and `v = 0` off them.
    public func boxExactHypergradient(_ x: Tensor, at w: Tensor, bound: Double = 0.3) -> Tensor {
        let h = hessian(at: w) { lower(x, $0) }
        let v = reducedSolve(h, gradient(at: w) { upper(x, $0) }, free: freeCoordinates(w, lower: -bound, upper: bound))
        let s = sigmoid(x), z = ytr * matmul(xtr, w)
        return -(1 / Double(n)) * s * (1 - s) * (-sigmoid(-z)) * ytr * matmul(xtr, v)
    }
}

/// The coordinates of `w` strictly inside `[lower, upper]` (by more than 10⁻⁹).
func freeCoordinates(_ w: Tensor, lower: Double, upper: Double) -> [Int] {
    w.scalars.indices.filter { w.scalars[$0] > lower + 1e-9 && w.scalars[$0] < upper - 1e-9 }
}

/// `v` with `v_F = H_FF⁻¹ b_F` on the coordinates `free` and zero elsewhere, by a dense solve.
func reducedSolve(_ h: Tensor, _ b: Tensor, free: [Int]) -> Tensor {
    let n = b.count
    var v = [Double](repeating: 0, count: n)
    guard !free.isEmpty else { return Tensor(v) }
    let reduced = Tensor(shape: [free.count, free.count], scalars: free.flatMap { i in free.map { h.scalars[i * n + $0] } })
    for (i, value) in zip(free, solve(reduced, Tensor(free.map { b.scalars[$0] })).scalars) { v[i] = value }
    return Tensor(v)
}
