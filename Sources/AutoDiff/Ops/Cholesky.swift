// The Cholesky factorisation as a stageable, differentiable op: `cholesky` (A ↦ L with A = L Lᵀ) and
// `triangularSolve` (L, B ↦ L⁻¹ B or L⁻ᵀ B), and `CholeskyFactorization`, one factor solved against many
// right-hand sides. Unlike `choleskySolve` (which factors on the values before applying its op, to return
// `nil` when A is not positive definite), every step here is a primitive, so a function of them can be
// staged with A symbolic.

/// A symmetric positive definite matrix `A` factored once, `A = L Lᵀ`, then solved against any number
/// of right-hand sides: `solve(b) = L⁻ᵀ (L⁻¹ b) = A⁻¹ b`, two triangular solves (O(n²) for a vector,
/// against O(n³/3) for the factor).
///
/// Every step is a primitive (`Cholesky`, `TriangularSolve`), so the solutions are differentiable to any
/// order in both `A` and `b`, and a function using a factorisation can be staged with `A` symbolic (the
/// factor is then computed once per call of the program, and common-subexpression elimination merges
/// repeated factorisations of the same matrix).
///
/// ```
/// let h = CholeskyFactorization(a)   // stops if a is not positive definite
/// let w = h.solve(b), v = h.solve(c)  // one factorisation, two solves
/// ```
public struct CholeskyFactorization {
    /// The lower triangular factor `L` (`A = L Lᵀ`, zeros above the diagonal).
    public let lower: Tensor

    /// Factors `a` (only its lower triangle is read) by `cholesky(_:)`.
    ///
    /// - Precondition: `a` is square and positive definite; the message names the shape or the pivot.
    public init(_ a: Tensor) { lower = cholesky(a) }

    /// `A⁻¹ b = L⁻ᵀ (L⁻¹ b)` for `b` of shape `[n]` or `[n, k]`.
    public func solve(_ b: Tensor) -> Tensor {
        triangularSolve(lower, triangularSolve(lower, b, transposed: false), transposed: true)
    }
}

/// The lower triangular `L` with `A = L Lᵀ` of a symmetric positive definite `a` (only its lower
/// triangle is read), by the blocked kernel of `CholeskyFactor`.
///
/// Rules (the forward- and reverse-mode rules of Murray 2016, restated for a factor that reads only the
/// lower triangle), with `Φ(X)` the lower triangle of X with its diagonal halved and
/// `S = tril(Ȧ) + tril(Ȧ, −1)ᵀ` the symmetric matrix of the lower triangle read: JVP `L̇ = L Φ(L⁻¹ S L⁻ᵀ)`; VJP `Ā = Φ(G + Gᵀ)` with
/// `G = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹` (a lower triangular adjoint: the entries above the diagonal are not read).
///
/// - Precondition: `a` is square and non-empty, and numerically positive definite (a positive pivot at
///   every step); the message names the shape or the failing pivot.
public func cholesky(_ a: Tensor) -> Tensor {
    engineCheck(
        a.rank == 2 && a.shape[0] == a.shape[1] && a.shape[0] > 0,
        "\(AutoDiffError.invalidArgument(op: "cholesky", reason: "the matrix must be square and non-empty, got shape \(a.shape)"))")
    return Cholesky()(a)
}

/// The primitive behind `cholesky(_:)`. Rules in `cholesky(_:)`'s documentation.
public struct Cholesky: UnaryPrimitive {
    public var name: String { "cholesky" }
    public func value(_ a: Tensor) -> Tensor {
        let n = a.shape[0]
        guard let factor = CholeskyFactor(a.scalars, n: n) else {
            engineFailure("\(AutoDiffError.invalidArgument(op: "cholesky", reason: "the \(n)×\(n) matrix is not positive definite (a non-positive pivot)"))")
        }
        return Tensor(shape: [n, n], scalars: factor.lowerFactor)
    }
    public func jvp(_ t: Tensor, x: Tensor, y: Tensor) -> Tensor {
        let symmetric = lowerTriangle(t, diagonal: 1) + lowerTriangle(t, diagonal: 0).transposed
        let left = triangularSolve(y, symmetric, transposed: false)  // L⁻¹ S
        let both = triangularSolve(y, left.transposed, transposed: false).transposed  // L⁻¹ S L⁻ᵀ
        return matmul(y, lowerTriangle(both, diagonal: 0.5))
    }
    public func vjp(_ g: Tensor, x: Tensor, y: Tensor) -> Tensor {
        let p = lowerTriangle(matmul(y, g, transposeA: true, transposeB: false), diagonal: 0.5)
        let left = triangularSolve(y, p, transposed: true)  // L⁻ᵀ P
        let both = triangularSolve(y, left.transposed, transposed: true).transposed  // L⁻ᵀ P L⁻¹
        return lowerTriangle(both + both.transposed, diagonal: 0.5)
    }
    public func swiftSource(_ a: String) -> String { "cholesky(\(a))" }
}

/// `op(T)⁻¹ b` for `T` the lower triangle of the square `l` (entries above the diagonal are not read),
/// `op(T) = T` or, when `transposed`, `Tᵀ`; `b` is `[n]` or `[n, k]`. Many right-hand sides are solved
/// blocked on the GEMM.
///
/// Rules (with `y = op(T)⁻¹ b`): JVP `ẏ = op(T)⁻¹ (ḃ − op(tril(L̇)) y)`; VJP `b̄ = op(T)⁻ᵀ ȳ`,
/// `L̄ = tril(−b̄ yᵀ)` (or `tril(−y b̄ᵀ)` when `transposed`).
///
/// - Precondition: `l` is square, `b` is `[n]` or `[n, k]`, and T's diagonal has no zero (the message
///   names the shapes or the entry).
public func triangularSolve(_ l: Tensor, _ b: Tensor, transposed: Bool) -> Tensor {
    _ = checkLinearSystem("triangularSolve", l, b)
    return TriangularSolve(transposed: transposed)(l, b)
}

/// The primitive behind `triangularSolve(_:_:transposed:)`. Rules in its documentation.
public struct TriangularSolve: BinaryPrimitive {
    /// Whether the triangle enters transposed (`Tᵀ y = b`, an upper triangular system).
    public var transposed: Bool
    public var name: String { "triangularSolve" }
    public func outputShape(_ l: [Int], _ b: [Int]) -> [Int] { b }
    public func value(_ l: Tensor, _ b: Tensor) -> Tensor {
        let n = l.shape[0], columns = b.rank == 2 ? b.shape[1] : 1
        for i in 0..<n where l.scalars[i * n + i] == 0 {
            engineFailure("\(AutoDiffError.invalidArgument(op: "triangularSolve", reason: "the diagonal entry l[\(i)][\(i)] of the \(n)×\(n) triangle is zero"))")
        }
        return Tensor(shape: b.shape, scalars: solveLowerTriangular(
            b.scalars, columns: columns, lower: l.scalars, n: n, transposed: transposed))
    }
    public func jvpA(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        -triangularSolve(a, product(lowerTriangle(t, diagonal: 1), transposed: transposed, y), transposed: transposed)
    }
    public func jvpB(_ t: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        triangularSolve(a, t, transposed: transposed)
    }
    public func vjpA(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        let adjointB = triangularSolve(a, g, transposed: !transposed)
        return lowerTriangle(transposed ? -outerProduct(y, adjointB) : -outerProduct(adjointB, y), diagonal: 1)
    }
    public func vjpB(_ g: Tensor, a: Tensor, b: Tensor, y: Tensor) -> Tensor {
        triangularSolve(a, g, transposed: !transposed)
    }
    public func swiftSource(_ l: String, _ b: String) -> String {
        "triangularSolve(\(l), \(b), transposed: \(transposed))"
    }
}

/// `op(t) y` for a square `t` and `y` of shape `[n]` or `[n, k]`, `op` transposing when `transposed`.
private func product(_ t: Tensor, transposed: Bool, _ y: Tensor) -> Tensor {
    let columns = y.rank == 1 ? y.reshaped(to: [y.count, 1]) : y
    return matmul(t, columns, transposeA: transposed, transposeB: false).reshaped(to: y.shape)
}

/// The lower triangle of the square `x` (zeros above the diagonal) with its diagonal scaled by
/// `diagonal` (1 keeps it, 0 drops it, 0.5 is the `Φ` of the Cholesky rules): a product with a constant
/// mask, so it is linear and differentiable like any product.
private func lowerTriangle(_ x: Tensor, diagonal: Double) -> Tensor {
    let n = x.shape[0]
    return x * Tensor(shape: [n, n]) { k in k / n > k % n ? 1 : k / n == k % n ? diagonal : 0 }
}
