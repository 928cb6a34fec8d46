/// The exact dense solve of `H v = b` (Liu et al. 2021 (survey), eq. 31 evaluated directly): the dense
/// `H = ∇²ᵧᵧf` (`P H P + (I − P)` with a null space) is assembled from its `n = y.count` columns `H e_i`
/// (`LinearSystem.denseMatrix`), symmetrised `(H + Hᵀ)/2`, then factored by Cholesky (`choleskySolve`);
/// if H is not positive definite (a saddle or a maximum of f in y) it falls back to LU with partial
/// pivoting (`solve`) and says so in `notes`.
///
/// Cost: n counted HVPs, O(n³) flops and O(n²) memory, plus one HVP for the reported residual. With
/// staged derivatives the n columns come from one replay of the HVP program batched over the basis
/// directions (`BilevelOracle.lowerHessian`); eager, from n HVPs one after another. Use it for small
/// inner problems and as the reference the iterative solvers are checked against.
/// Precondition: H is nonsingular (the LU message names the zero pivot).
public struct ExactSolve: HessianInverseSolver, Sendable {
    /// `"exact"`.
    public var name: String { "exact" }

    /// The dense exact solver.
    public init() {}

    /// `v = H⁻¹ b` by a dense factorisation (see the type's documentation).
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        let n = b.count
        let dense = try system.denseMatrix()
        let h = 0.5 * (dense + dense.transposed)
        let flat = b.reshaped(to: [n])
        var notes = ["exact: dense H from \(n) HVPs, Cholesky"]
        let v: Tensor
        if let cholesky = choleskySolve(h, flat) {
            v = cholesky
        } else {
            notes = ["exact: dense H from \(n) HVPs is not positive definite; solved by LU with partial pivoting"]
            v = AutoDiff.solve(h, flat)
        }
        let solution = v.reshaped(to: b.shape)
        return LinearSolution(
            solution: solution, iterations: 0, residual: system.relativeResidual(of: solution, rhs: b), converged: true, notes: notes)
    }
}

extension HessianInverseSolver where Self == ExactSolve {
    /// The dense exact solve (see `ExactSolve`).
    public static var exact: ExactSolve { ExactSolve() }
}
