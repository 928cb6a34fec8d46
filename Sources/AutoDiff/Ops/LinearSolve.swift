// Dense linear solves: `solve` (LU with partial pivoting) and `choleskySolve` (symmetric positive
// definite). Both are differentiable to any order: their rules are written with the solves themselves.

/// The solution `y = A⁻¹ b` of a square system, by LU factorisation with partial pivoting.
///
/// `b` is a vector `[n]` or a matrix `[n, k]` of right-hand sides. Rules (with `y = A⁻¹ b`):
/// JVP `ẏ = A⁻¹ (ḃ − Ȧ y)`; VJP `b̄ = A⁻ᵀ ȳ`, `Ā = −b̄ yᵀ`.
///
/// - Precondition: `a` is square `[n, n]`, `b` is `[n]` or `[n, k]`, and `a` is not (numerically)
///   singular; the messages name the shapes or the pivot.
public func solve(_ a: Tensor, _ b: Tensor) -> Tensor {
    let n = checkLinearSystem("solve", a, b)
    return Solve(n: n)(a, b)
}

/// The primitive behind `solve(_:_:)`: `y = A⁻¹ b` by LU. JVP `ẏ = A⁻¹ (ḃ − Ȧ y)`; VJP `b̄ = A⁻ᵀ ȳ`,
/// `Ā = −b̄ yᵀ`.
public struct Solve: BinaryPrimitive {
    /// The order of the system.
    public var n: Int
    public var name: String { "solve" }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { b }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor {
        guard let factors = LUFactors(a.scalars, n: n) else {
            engineFailure("\(AutoDiffError.invalidArgument(op: "solve", reason: "the \(n)×\(n) matrix is singular to working precision (a zero pivot in LU with partial pivoting)"))")
        }
        return Tensor(shape: b.shape, scalars: factors.solve(b.scalars, columns: b.rank == 2 ? b.shape[1] : 1))
    }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { solve(a, -matmul(t, y)) }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { solve(a, t) }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { -outerProduct(solve(a.transposed, g), y) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { solve(a.transposed, g) }
    public func swiftSource(_ a: String, _ b: String) -> String { "solve(\(a), \(b))" }
}

/// The solution `y = A⁻¹ b` of a symmetric positive definite system by Cholesky factorisation `A = L Lᵀ`,
/// or `nil` when `A` is not numerically positive definite (a non-positive pivot), so a caller can fall
/// back to `solve`.
///
/// Only the lower triangle of `a` is read. Rules as `solve`, with `A⁻ᵀ = A⁻¹`: JVP `ẏ = A⁻¹ (ḃ − Ȧ y)`;
/// VJP `b̄ = A⁻¹ ȳ`, `Ā = −b̄ yᵀ`.
///
/// - Precondition: `a` is square and symmetric (to 1e-8 relative), `b` is `[n]` or `[n, k]`.
public func choleskySolve(_ a: Tensor, _ b: Tensor) -> Tensor? {
    let n = checkLinearSystem("choleskySolve", a, b)
    let scale = a.scalars.reduce(0) { max($0, abs($1)) }
    for i in 0..<n { for j in 0..<i where abs(a.scalars[i * n + j] - a.scalars[j * n + i]) > 1e-8 * max(scale, 1) {
        engineFailure("\(AutoDiffError.invalidArgument(op: "choleskySolve", reason: "the matrix is not symmetric: a[\(i)][\(j)] = \(a.scalars[i * n + j]) but a[\(j)][\(i)] = \(a.scalars[j * n + i])"))")
    } }
    guard let factor = CholeskyFactor(a.scalars, n: n) else { return nil }
    return CholeskySolve(factor: factor)(a, b)
}

/// The primitive behind `choleskySolve(_:_:)`, holding the factor of its first input (computed once by
/// `choleskySolve`, which needs the values of `a` to decide whether it is positive definite — so it
/// cannot be staged on a symbolic `a`). Rules as `Solve` with `A⁻ᵀ = A⁻¹`.
public struct CholeskySolve: BinaryPrimitive {
    /// `L` with `A = L Lᵀ`, for the `A` this op is applied to.
    public var factor: CholeskyFactor
    public var name: String { "choleskySolve" }
    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] { b }
    public func value(_ a: Tensor, _ b: Tensor) -> Tensor {
        Tensor(shape: b.shape, scalars: factor.solve(b.scalars, columns: b.rank == 2 ? b.shape[1] : 1))
    }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { choleskySolve(a, -matmul(t, y))! }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { choleskySolve(a, t)! }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { -outerProduct(choleskySolve(a, g)!, y) }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor { choleskySolve(a, g)! }
    public func swiftSource(_ a: String, _ b: String) -> String { "choleskySolve(\(a), \(b))!" }
}

/// Checks the shapes of `a y = b` and returns n (shared with `triangularSolve`).
func checkLinearSystem(_ op: String, _ a: Tensor, _ b: Tensor) -> Int {
    engineCheck(
        a.rank == 2 && a.shape[0] == a.shape[1] && a.shape[0] > 0,
        "\(AutoDiffError.shapeMismatch(op: op, lhs: a.shape, rhs: b.shape, reason: "the matrix must be square and non-empty"))")
    let n = a.shape[0]
    engineCheck(
        (b.rank == 1 || b.rank == 2) && b.shape[0] == n,
        "\(AutoDiffError.shapeMismatch(op: op, lhs: a.shape, rhs: b.shape, reason: "the right-hand side must be [\(n)] or [\(n), k]"))")
    return n
}

/// `u vᵀ` for a vector pair, or `U Vᵀ` for matrices of right-hand sides (the shape of `A`; shared with
/// `TriangularSolve`).
func outerProduct(_ u: Tensor, _ v: Tensor) -> Tensor {
    u.rank == 1
        ? matmul(u.reshaped(to: [u.count, 1]), v.reshaped(to: [1, v.count]))
        : matmul(u, v, transposeA: false, transposeB: true)
}

// The factorisations (`LUFactors`, `CholeskyFactor`) are kernels: Sources/AutoDiff/Kernels/Factorization.swift;
// the stageable Cholesky (`cholesky`, `triangularSolve`, `CholeskyFactorization`): Ops/Cholesky.swift.
