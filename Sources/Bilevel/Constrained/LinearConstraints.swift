/// Linear constraints on the lower-level variable, `E(x) y = e(x)` and `G(x) y ≤ h(x)` (Zhang et al. 2024's
/// linearly constrained bilevel problem, LC-BLO; Dash & Ram 2023, KKT slides), for a lower variable `y` of shape `[n]`.
///
/// Each part is a closure of the upper variable `x` written with engine ops, so constraints may depend
/// on `x` and the KKT hypergradient differentiates through them (`∇ₓ⟨μ, G(x) v⟩`, `∇ₓ⟨w, h(x)⟩`, …).
/// Constant constraints simply ignore `x`.
public struct LinearConstraints {
    /// `x ↦ (E, e)`: `E` is `[p, n]`, `e` is `[p]`; `nil` for no equality constraints.
    public var equality: ((Tensor) -> (matrix: Tensor, rhs: Tensor))?
    /// `x ↦ (G, h)`: `G` is `[q, n]`, `h` is `[q]`; `nil` for no inequality constraints.
    public var inequality: ((Tensor) -> (matrix: Tensor, rhs: Tensor))?

    /// Constraints from their two parts (either may be `nil`).
    public init(
        equality: ((Tensor) -> (matrix: Tensor, rhs: Tensor))? = nil,
        inequality: ((Tensor) -> (matrix: Tensor, rhs: Tensor))? = nil
    ) {
        self.equality = equality
        self.inequality = inequality
    }

    /// The box `lower ≤ y ≤ upper` on a vector of `n` entries, as `G = [I; −I]`, `h = [upper; −lower]`
    /// (rows `0..<n` are the upper bounds, rows `n..<2n` the lower bounds).
    public static func box(lower: Double, upper: Double, count n: Int) -> LinearConstraints {
        let identity = identityMatrix(n)
        let matrix = concatenate([identity, -identity])
        let rhs = Tensor((0..<(2 * n)).map { $0 < n ? upper : -lower })
        return LinearConstraints(inequality: { _ in (matrix, rhs) })
    }

    /// The constraint data at `x`, checked against a lower variable of `n` entries.
    ///
    /// - Throws: `BilevelError.shapeMismatch` naming the matrix or right-hand side whose shape is wrong,
    ///   `.nonFinite` for NaN/Inf entries.
    func evaluate(at x: Tensor, count n: Int) throws -> ConstraintData {
        func part(_ closure: ((Tensor) -> (matrix: Tensor, rhs: Tensor))?, _ name: String) throws -> (Tensor, Tensor) {
            guard let closure else { return (Tensor(zeros: [0, n]), Tensor(zeros: [0])) }
            let (matrix, rhs) = closure(x.detached)
            let rows = matrix.rank == 2 ? matrix.shape[0] : -1
            guard matrix.rank == 2 && matrix.shape[1] == n else {
                throw BilevelError.shapeMismatch(name: "\(name) constraint matrix", expected: [max(rows, 0), n], actual: matrix.shape)
            }
            guard rhs.shape == [rows] else { throw BilevelError.shapeMismatch(name: "\(name) right-hand side", expected: [rows], actual: rhs.shape) }
            guard !matrix.hasNonFinite && !rhs.hasNonFinite else { throw BilevelError.nonFinite(quantity: "the \(name) constraints", step: nil) }
            return (matrix.detached, rhs.detached)
        }
        let (e, eRhs) = try part(equality, "equality")
        let (g, gRhs) = try part(inequality, "inequality")
        return ConstraintData(n: n, equality: e.scalars, equalityRhs: eRhs.scalars, inequality: g.scalars, inequalityRhs: gRhs.scalars)
    }
}

/// Constraint matrices at one `x`, as flat row-major arrays for the dense active-set solver.
struct ConstraintData {
    /// The lower variable's size.
    let n: Int
    /// `E`, `[p · n]` row-major.
    let equality: [Double]
    /// `e`, `[p]`.
    let equalityRhs: [Double]
    /// `G`, `[q · n]` row-major.
    let inequality: [Double]
    /// `h`, `[q]`.
    let inequalityRhs: [Double]

    /// p, the number of equality rows.
    var equalityCount: Int { equalityRhs.count }
    /// q, the number of inequality rows.
    var inequalityCount: Int { inequalityRhs.count }

    /// Row `i` of `E` (for `i < p`) or of `G` (row `i − p`): the rows of `[E; G]`.
    func row(_ i: Int) -> ArraySlice<Double> {
        i < equalityCount ? equality[(i * n)..<((i + 1) * n)] : inequality[((i - equalityCount) * n)..<((i - equalityCount + 1) * n)]
    }

    /// The right-hand side of row `i` of `[E; G]`.
    func rhs(_ i: Int) -> Double { i < equalityCount ? equalityRhs[i] : inequalityRhs[i - equalityCount] }

    /// `(row i)ᵀ y − rhs_i`: the residual of an equality, the violation (if positive) of an inequality.
    func slack(_ i: Int, _ y: [Double]) -> Double { innerProduct(row(i), y) - rhs(i) }

    /// The size against which row i's slack is judged at a point with `‖y‖∞ = largest`:
    /// `1 + |rhs_i| + ‖row_i‖₁ · largest`.
    func scale(_ i: Int, largest: Double) -> Double { 1 + abs(rhs(i)) + row(i).reduce(0) { $0 + abs($1) } * largest }

    /// `"equality row 2"` or `"inequality row 5"` for row i of `[E; G]`.
    func describe(_ i: Int) -> String { i < equalityCount ? "equality row \(i)" : "inequality row \(i - equalityCount)" }

    /// The rows `indices` of `[E; G]` as a `[k, n]` tensor.
    func matrix(rows indices: [Int]) -> Tensor {
        Tensor(shape: [indices.count, n], scalars: indices.flatMap { row($0) })
    }
}
