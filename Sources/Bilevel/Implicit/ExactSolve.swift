/// The exact dense solve of `H v = b` (Liu et al. 2021 (survey), eq. 31 evaluated directly): `H = ∇²ᵧᵧf` is assembled
/// column by column from `n = y.count` counted HVPs `H e_i`, symmetrised `(H + Hᵀ)/2`, then factored by
/// Cholesky (`choleskySolve`); if H is not positive definite (a saddle or a maximum of f in y) it falls
/// back to LU with partial pivoting (`solve`) and says so in `notes`.
///
/// Cost: n HVPs, O(n³) flops and O(n²) memory, plus one HVP for the reported residual. Use it for small
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
        var columns = [Double]()
        columns.reserveCapacity(n * n)
        for i in 0..<n { columns += system.apply(Tensor(shape: b.shape) { $0 == i ? 1 : 0 }).scalars }
        let transposedH = Tensor(shape: [n, n], scalars: columns)
        let h = 0.5 * (transposedH + transposedH.transposed)
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
