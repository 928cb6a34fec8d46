/// A way to apply (an approximation of) `H⁻¹` to a vector, where `H = ∇²ᵧᵧf(x, y*)` is available only
/// through Hessian-vector products.
///
/// Implicit differentiation (Liu et al. 2021 (survey), eq. 31; Zhang et al. 2024, eq. 4) needs `v = H⁻¹ ∇ᵧF`; every solver (conjugate
/// gradient, Neumann series, fixed point, exact dense solve, and the cheap approximations) conforms,
/// so `Implicit(solver:)` takes any of them.
public protocol HessianInverseSolver {
    /// A short name (`"cg"`, `"neumann"`, …) for tables and messages.
    var name: String { get }
    /// Approximately solves `H v = b` for the system described by `system`.
    ///
    /// - Throws: `BilevelError.didNotConverge` only when the solver is strict; otherwise the returned
    ///   `LinearSolution` reports `converged == false` with its residual.
    func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution
}

/// The linear system `H v = b` with `H = ∇²ᵧᵧf(x, y)` at a given point, optionally restricted to the
/// null space of the active constraint rows (the KKT system of a constrained lower level).
///
/// With a null space with orthogonal projector P, `apply` is `M v = P H P v + (I − P) v`: on `null(A)`
/// it is the reduced Hessian, on its complement the identity, so M is positive definite whenever H is
/// positive definite on `null(A)`, and for a right-hand side `P b` every solver returns a `v` in `null(A)`
/// with `P H v = P b`, the first block row of the KKT system `[H Aᵀ; A 0][v; w] = [b; 0]`.
public struct LinearSystem {
    /// The oracle whose counted products the solver uses.
    public let oracle: BilevelOracle
    /// The upper-level point.
    public let x: Tensor
    /// The lower-level point (the inner solution).
    public let y: Tensor
    /// The null space the system is restricted to, or `nil` for the plain `H v = b`.
    public let nullSpace: NullSpace?
    /// `v ↦ H v` at this `(x, y)`: in staged mode, the HVP program specialized to `(x, y)` at the first product.
    private let hessian = FixedPointHVP()

    /// A system at `(x, y)` for the oracle's problem, restricted to `nullSpace` when given.
    public init(oracle: BilevelOracle, x: Tensor, y: Tensor, nullSpace: NullSpace? = nil) {
        self.oracle = oracle
        self.x = x
        self.y = y
        self.nullSpace = nullSpace
    }

    /// `M v` (`H v` without a null space) by one counted Hessian-vector product. With staged
    /// derivatives the first product specializes the staged HVP to this `(x, y)` and every product
    /// replays the specialized program (`Program.specialized(binding:)`), which runs only the ops of `v`.
    public func apply(_ v: Tensor) -> Tensor {
        guard let nullSpace else { return oracle.lowerHVP(x, y, v, at: hessian) }
        let projected = nullSpace.project(v)
        return nullSpace.project(oracle.lowerHVP(x, y, projected, at: hessian)) + (v - projected)
    }

    /// The dense `[n, n]` matrix of `M` over the flattened y (`n = y.count`), column i being `apply(e_i)`;
    /// n counted HVPs either way. When the staged HVP is specialized to this `(x, y)` (`FixedPointHVP`:
    /// a product then runs only the ops of v, e.g. P3's `H v` with the weighted Gram matrix formed once)
    /// the columns are n replays of that program; otherwise `H = oracle.lowerHessian(x, y)`, one replay of
    /// the general HVP program batched over the basis when staged, and with a null space
    /// `P H P + (I − P)` (`NullSpace.projector`), as `apply` does. Measured (bench `staged-exact`, median
    /// ms): P1 2000x500, not specialized, 18–26 column by column against 10–12 batched; P3 n500-d50,
    /// specialized, 0.43–0.48 column by column against 0.57 batched (the batched program re-forms the
    /// weighted Gram matrix from the 500×50 data on every call).
    ///
    /// - Throws: `BilevelError.shapeMismatch` when y is empty.
    public func denseMatrix() throws -> Tensor {
        let n = y.count
        if hessian.program(oracle, x, y) != nil {
            let columns = (0..<n).flatMap { i in apply(Tensor(shape: y.shape) { $0 == i ? 1 : 0 }).scalars }
            return Tensor(shape: [n, n], scalars: columns).transposed
        }
        let matrix = try oracle.lowerHessian(x, y)
        guard let nullSpace else { return matrix }
        let projector = nullSpace.projector
        return matmul(matmul(projector, matrix), projector) + (identityMatrix(n) - projector)
    }

    /// `M_B v` for the Hessian of the mini-batch loss on `indices` (`problem.lowerBatch`, or the mean of
    /// `problem.lowerSamples` over those samples), projected like `apply` (`P H_B P v + (I − P) v` with a
    /// null space), by one counted Hessian-vector product.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has neither `lowerBatch` nor
    ///   `lowerSamples`, or (with `lowerSamples`) an index is outside its samples.
    public func applyBatch(_ v: Tensor, indices: [Int]) throws -> Tensor {
        guard let nullSpace else { return try oracle.lowerBatchHVP(x, y, v, indices: indices) }
        let projected = nullSpace.project(v)
        return nullSpace.project(try oracle.lowerBatchHVP(x, y, projected, indices: indices)) + (v - projected)
    }

    /// `P v`, or `v` itself without a null space.
    public func project(_ v: Tensor) -> Tensor { nullSpace?.project(v) ?? v }

    /// The relative residual `‖M v − b‖ / ‖b‖` (one extra product; `‖M v‖` when `b = 0`).
    public func relativeResidual(of v: Tensor, rhs b: Tensor) -> Double {
        let r = (apply(v) - b).squaredNorm().scalar.squareRoot()
        let nb = b.squaredNorm().scalar.squareRoot()
        return nb > 0 ? r / nb : r
    }
}

/// The null space `{v : A v = 0}` of k linearly independent rows `A` (`[k, n]`), held as an orthonormal
/// basis `Q` of the row space (`A = L Q` by modified Gram–Schmidt, reorthogonalised once), so
/// `P v = v − Qᵀ (Q v)` for vectors `v` of shape `[n]`.
public struct NullSpace: Sendable {
    /// The orthonormal rows Q, `[k, n]`.
    public let basis: Tensor

    /// The null space of the rows of `rows` (`[k, n]`).
    ///
    /// - Throws: `BilevelError.degenerateActiveSet` naming the first row that is (to relative 10⁻¹⁰) a
    ///   combination of the rows before it; `names[i]` describes row i in the message.
    public init(rows: Tensor, names: [String]) throws {
        guard rows.rank == 2 && names.count == rows.shape[0] else {
            throw BilevelError.shapeMismatch(name: "NullSpace rows (one name per row)", expected: [names.count, rows.shape.last ?? 0], actual: rows.shape)
        }
        let (k, n) = (rows.shape[0], rows.shape[1])
        var basis: [[Double]] = []
        for i in 0..<k {
            var q = Array(rows.scalars[(i * n)..<((i + 1) * n)])
            let norm0 = innerProduct(q, q).squareRoot()
            for _ in 0..<2 { for b in basis {
                let c = innerProduct(b, q)
                for j in 0..<n { q[j] -= c * b[j] }
            } }
            let norm = innerProduct(q, q).squareRoot()
            guard norm > 1e-10 * norm0 else {
                throw BilevelError.degenerateActiveSet(reason: "\(names[i]) is a linear combination of \(names[..<i].joined(separator: ", ")) at y* (the active rows violate LICQ), so the KKT system is singular; remove the redundant constraint")
            }
            basis.append(q.map { $0 / norm })
        }
        self.basis = Tensor(shape: [k, n], scalars: basis.flatMap { $0 })
    }

    /// The dense projector `P = I − QᵀQ`, `[n, n]`.
    public var projector: Tensor {
        let n = basis.shape[1]
        return basis.shape[0] == 0 ? identityMatrix(n) : identityMatrix(n) - matmul(basis.transposed, basis)
    }

    /// `P v = v − Qᵀ (Q v)`.
    public func project(_ v: Tensor) -> Tensor {
        basis.shape[0] == 0 ? v : v - matmul(matmul(basis, v), basis)
    }
}

/// The `[n, n]` identity matrix.
func identityMatrix(_ n: Int) -> Tensor { Tensor(shape: [n, n]) { $0 / n == $0 % n ? 1 : 0 } }

/// The outcome of a linear solve.
public struct LinearSolution: Sendable {
    /// The (approximate) solution `v ≈ H⁻¹ b`.
    public var solution: Tensor
    /// Iterations (products with H) the solver used; 0 for a direct method.
    public var iterations: Int
    /// The final relative residual `‖H v − b‖ / ‖b‖`, or `nil` when the solver does not compute it.
    public var residual: Double?
    /// Whether the solver met its own stopping criterion.
    public var converged: Bool
    /// Extra facts, one per line (e.g. the error against a reference solve).
    public var notes: [String]
    /// `‖v − v_ref‖ / ‖v_ref‖` against a reference solve, when the solver was asked to compare.
    public var referenceError: Double?
    /// The relative-residual tolerance the solver stopped at, or `nil` for a fixed budget (reported in
    /// `BilevelError.didNotConverge` by strict methods).
    public var tolerance: Double?

    /// A solution from its parts. `converged` is forced to `false` when `residual` is NaN or infinite:
    /// a solve is never converged with a non-finite residual.
    public init(
        solution: Tensor, iterations: Int, residual: Double?, converged: Bool, tolerance: Double? = nil, notes: [String] = []
    ) {
        self.solution = solution
        self.iterations = iterations
        self.residual = residual
        self.converged = converged && (residual?.isFinite ?? true)
        self.tolerance = tolerance
        self.notes = notes
    }
}
