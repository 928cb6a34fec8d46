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

/// Checks the shapes of `a y = b` and returns n.
private func checkLinearSystem(_ op: String, _ a: Tensor, _ b: Tensor) -> Int {
    engineCheck(
        a.rank == 2 && a.shape[0] == a.shape[1] && a.shape[0] > 0,
        "\(AutoDiffError.shapeMismatch(op: op, lhs: a.shape, rhs: b.shape, reason: "the matrix must be square and non-empty"))")
    let n = a.shape[0]
    engineCheck(
        (b.rank == 1 || b.rank == 2) && b.shape[0] == n,
        "\(AutoDiffError.shapeMismatch(op: op, lhs: a.shape, rhs: b.shape, reason: "the right-hand side must be [\(n)] or [\(n), k]"))")
    return n
}

/// `u vᵀ` for a vector pair, or `U Vᵀ` for matrices of right-hand sides (the shape of `A`).
private func outerProduct(_ u: Tensor, _ v: Tensor) -> Tensor {
    u.rank == 1
        ? matmul(u.reshaped(to: [u.count, 1]), v.reshaped(to: [1, v.count]))
        : matmul(u, v, transposeA: false, transposeB: true)
}

/// `P A = L U` of a row-major square matrix (unit lower L and U stored together).
struct LUFactors {
    private var lu: [Double]
    private var pivots: [Int]
    private let n: Int

    /// Factors `a` (right-looking: each pivot row updates the rows below it with the SIMD `axpy`); `nil`
    /// when a pivot is zero relative to the matrix's scale.
    init?(_ a: [Double], n: Int) {
        self.n = n
        lu = a
        pivots = Array(0..<n)
        let tiny = Double.ulpOfOne * Double(n) * a.reduce(0) { max($0, abs($1)) }
        let ok = lu.withUnsafeMutableBufferPointer { buffer -> Bool in
            let m = buffer.baseAddress!
            for k in 0..<n {
                var p = k
                for i in (k + 1)..<n where abs(m[i * n + k]) > abs(m[p * n + k]) { p = i }
                if abs(m[p * n + k]) <= tiny { return false }
                if p != k {
                    for j in 0..<n { buffer.swapAt(k * n + j, p * n + j) }
                    pivots.swapAt(k, p)
                }
                let pivot = m[k * n + k], width = n - k - 1
                for i in (k + 1)..<n {
                    let l = m[i * n + k] / pivot
                    m[i * n + k] = l
                    if l != 0 { MatmulKernel.axpy(width, -l, m + k * n + k + 1, m + i * n + k + 1) }
                }
            }
            return true
        }
        if !ok { return nil }
    }

    /// `A⁻¹ B` for `columns` right-hand sides stored row-major `[n, columns]`.
    func solve(_ b: [Double], columns k: Int) -> [Double] {
        lu.withUnsafeBufferPointer { m in
            eachColumn(of: b, rows: n, columns: k) { x in
                let m = m.baseAddress!
                let permuted = (0..<n).map { x[pivots[$0]] }
                for i in 0..<n { x[i] = permuted[i] - MatmulKernel.dot(i, m + i * n, x) }
                for i in stride(from: n - 1, through: 0, by: -1) {
                    x[i] = (x[i] - MatmulKernel.dot(n - i - 1, m + i * n + i + 1, x + i + 1)) / m[i * n + i]
                }
            }
        }
    }
}

/// Solves column by column: copies each column of the row-major `[rows, columns]` matrix `b` into a
/// contiguous vector, lets `solveInPlace` overwrite it with the solution, and gathers the solutions in the
/// same layout.
private func eachColumn(
    of b: [Double], rows n: Int, columns k: Int, _ solveInPlace: (UnsafeMutablePointer<Double>) -> Void
) -> [Double] {
    if k == 1 {
        var x = b
        x.withUnsafeMutableBufferPointer { solveInPlace($0.baseAddress!) }
        return x
    }
    var out = [Double](repeating: 0, count: n * k), column = [Double](repeating: 0, count: n)
    column.withUnsafeMutableBufferPointer { column in
        for c in 0..<k {
            for i in 0..<n { column[i] = b[i * k + c] }
            solveInPlace(column.baseAddress!)
            for i in 0..<n { out[i * k + c] = column[i] }
        }
    }
    return out
}

/// `A = L Lᵀ` of a row-major symmetric matrix (lower triangle read), L lower triangular: the raw,
/// non-differentiable kernel behind `choleskySolve`, exported for solvers that factor a small dense
/// matrix once and solve with it many times (the active-set QP of the bilevel layer).
public struct CholeskyFactor: Hashable, Sendable {
    private var l: [Double]
    /// The order n of the factored matrix.
    public let n: Int

    /// Factors the `n × n` row-major `a` (Cholesky–Crout: every entry of L is one SIMD dot product of two
    /// rows of L); `nil` when a pivot is not positive (A not positive definite).
    public init?(_ a: [Double], n: Int) {
        self.n = n
        l = [Double](repeating: 0, count: n * n)
        let ok = l.withUnsafeMutableBufferPointer { buffer -> Bool in
            let l = buffer.baseAddress!
            for j in 0..<n {
                let d = a[j * n + j] - MatmulKernel.dot(j, l + j * n, l + j * n)
                if !(d > 0) { return false }
                let ljj = d.squareRoot()
                l[j * n + j] = ljj
                for i in (j + 1)..<n { l[i * n + j] = (a[i * n + j] - MatmulKernel.dot(j, l + i * n, l + j * n)) / ljj }
            }
            return true
        }
        if !ok { return nil }
    }

    /// `A⁻¹ B` for `columns` right-hand sides stored row-major `[n, columns]`: `L z = b` by rows, then
    /// `Lᵀ x = z` by columns of Lᵀ (rows of L, so both sweeps read L contiguously).
    public func solve(_ b: [Double], columns k: Int = 1) -> [Double] {
        l.withUnsafeBufferPointer { l in
            eachColumn(of: b, rows: n, columns: k) { x in
                let l = l.baseAddress!
                for i in 0..<n { x[i] = (x[i] - MatmulKernel.dot(i, l + i * n, x)) / l[i * n + i] }
                for i in stride(from: n - 1, through: 0, by: -1) {
                    x[i] /= l[i * n + i]
                    MatmulKernel.axpy(i, -x[i], l + i * n, x)
                }
            }
        }
    }
}
