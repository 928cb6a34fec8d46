// Dense factorisations and their triangular solves on raw row-major storage: the kernels behind
// `solve` (LU with partial pivoting) and `choleskySolve`, blocked so that almost all of their work is
// one matrix product per block (`MatmulKernel.multiplyAdd`, the packed GEMM).

/// Columns per block of the blocked factorisations: the unblocked part is O(n · blockColumns²), the rest
/// runs in the GEMM.
private let blockColumns = 64

/// `P A = L U` of a row-major square matrix (unit lower L and U stored together).
struct LUFactors {
    private var lu: [Double]
    private var pivots: [Int]
    private let n: Int

    /// Factors `a` by the right-looking blocked algorithm: for each block of `blockColumns` columns, the
    /// panel is factored with partial pivoting (whole rows swapped), the block row of U solved with the
    /// panel's unit lower triangle, and the trailing matrix updated by one GEMM, `A₂₂ −= L₂₁ U₁₂`; `nil`
    /// when a pivot is zero relative to the matrix's scale.
    init?(_ a: [Double], n: Int) {
        self.n = n
        lu = a
        pivots = Array(0..<n)
        let tiny = Double.ulpOfOne * Double(n) * a.reduce(0) { max($0, abs($1)) }
        var pivots = self.pivots
        let ok = lu.withUnsafeMutableBufferPointer { buffer -> Bool in
            let m = buffer.baseAddress!
            for start in stride(from: 0, to: n, by: blockColumns) {
                let end = min(start + blockColumns, n)
                for k in start..<end {
                    var p = k
                    for i in (k + 1)..<n where abs(m[i * n + k]) > abs(m[p * n + k]) { p = i }
                    if abs(m[p * n + k]) <= tiny { return false }
                    if p != k {
                        for j in 0..<n { buffer.swapAt(k * n + j, p * n + j) }
                        pivots.swapAt(k, p)
                    }
                    let pivot = m[k * n + k], width = end - k - 1
                    for i in (k + 1)..<n {
                        let l = m[i * n + k] / pivot
                        m[i * n + k] = l
                        if l != 0 && width > 0 { MatmulKernel.axpy(width, -l, m + k * n + k + 1, m + i * n + k + 1) }
                    }
                }
                let trailing = n - end
                guard trailing > 0 else { continue }
                // U₁₂ = L₁₁⁻¹ A₁₂, row by row (L₁₁ unit lower).
                for i in (start + 1)..<end {
                    for p in start..<i where m[i * n + p] != 0 {
                        MatmulKernel.axpy(trailing, -m[i * n + p], m + p * n + end, m + i * n + end)
                    }
                }
                MatmulKernel.multiplyAdd(
                    transposeA: false, transposeB: false, m: trailing, n: trailing, k: end - start, alpha: -1,
                    a: m + end * n + start, lda: n, b: m + start * n + end, ldb: n, beta: 1, c: m + end * n + end, ldc: n)
            }
            return true
        }
        if !ok { return nil }
        self.pivots = pivots
    }

    /// `A⁻¹ B` for `columns` right-hand sides stored row-major `[n, columns]`.
    /// Many right-hand sides (≥ `blockedSolveColumns`) are solved blocked on the GEMM.
    func solve(_ b: [Double], columns k: Int) -> [Double] {
        if k >= blockedSolveColumns {
            var permuted = [Double](repeating: 0, count: n * k)
            for i in 0..<n { for j in 0..<k { permuted[i * k + j] = b[pivots[i] * k + j] } }
            return solveBothTriangles(permuted, rows: n, columns: k, factors: lu)
        }
        return lu.withUnsafeBufferPointer { m in
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

/// Solves column by column (fewer than `blockedSolveColumns` right-hand sides): copies each column of the row-major `[rows, columns]` matrix `b` into a
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

/// Right-hand sides from which the triangular solves run blocked on the GEMM (below it, one column at a
/// time; not tuned by measurement).
private let blockedSolveColumns = 8

/// Overwrites the row-major `[n, k]` matrix `x` with `T⁻¹ x` for the triangular `T` read from the row-major
/// `n × n` `matrix`: `T = matrix` (`transposed` false) or `matrixᵀ`, taking T's lower triangle when `lower`
/// and its upper one otherwise, with ones on the diagonal when `unitDiagonal`. Blocked for many right-hand
/// sides: for each block of `blockColumns` rows (top down for lower T, bottom up for upper), one GEMM
/// subtracts the rows already solved, `X_B −= T[B, done] X[done, :]`, then the block is solved row by row
/// with `axpy` over whole rows of X. Same sums as column by column, in another order (≤ 1e-12 apart, tested).
private func solveTriangularInPlace(
    _ x: UnsafeMutablePointer<Double>, rows n: Int, columns k: Int, matrix t: UnsafePointer<Double>,
    lower: Bool, transposed: Bool, unitDiagonal: Bool
) {
    func entry(_ i: Int, _ p: Int) -> Double { transposed ? t[p * n + i] : t[i * n + p] }
    let starts = Array(stride(from: 0, to: n, by: blockColumns))
    for start in lower ? starts : starts.reversed() {
        let end = min(start + blockColumns, n)
        let (doneStart, doneEnd) = lower ? (0, start) : (end, n)
        if doneEnd > doneStart {
            // T[B, done] is the block of `matrix` at (B, done), or at (done, B) read transposed.
            let block = transposed ? t + doneStart * n + start : t + start * n + doneStart
            MatmulKernel.multiplyAdd(
                transposeA: transposed, transposeB: false, m: end - start, n: k, k: doneEnd - doneStart, alpha: -1,
                a: block, lda: n, b: x + doneStart * k, ldb: k, beta: 1, c: x + start * k, ldc: k)
        }
        for i in lower ? Array(start..<end) : Array((start..<end).reversed()) {
            for p in lower ? start..<i : (i + 1)..<end where entry(i, p) != 0 {
                MatmulKernel.axpy(k, -entry(i, p), x + p * k, x + i * k)
            }
            if !unitDiagonal {
                let diagonal = t[i * n + i]
                for j in 0..<k { x[i * k + j] /= diagonal }
            }
        }
    }
}

/// `U⁻¹ L⁻¹ b` for the row-major `[n, k]` `b`, both triangles read from the row-major `n × n` LU
/// `factors`: L its lower triangle with ones on the diagonal, U its upper triangle, each solved blocked
/// by `solveTriangularInPlace`.
private func solveBothTriangles(_ b: [Double], rows n: Int, columns k: Int, factors: [Double]) -> [Double] {
    var x = b
    factors.withUnsafeBufferPointer { factors in
        x.withUnsafeMutableBufferPointer { x in
            let x = x.baseAddress!, t = factors.baseAddress!
            solveTriangularInPlace(x, rows: n, columns: k, matrix: t, lower: true, transposed: false, unitDiagonal: true)
            solveTriangularInPlace(x, rows: n, columns: k, matrix: t, lower: false, transposed: false, unitDiagonal: false)
        }
    }
    return x
}

/// `A = L Lᵀ` of a row-major symmetric matrix (lower triangle read), L lower triangular: the raw,
/// non-differentiable kernel behind `choleskySolve`, exported for solvers that factor a small dense
/// matrix once and solve with it many times (the active-set QP of the bilevel layer).
public struct CholeskyFactor: Hashable, Sendable {
    private var l: [Double]
    /// The order n of the factored matrix.
    public let n: Int

    /// Factors the `n × n` row-major `a` by the left-looking blocked algorithm: for each block J of
    /// `blockColumns` columns, one GEMM subtracts the finished columns, `A[j:, J] −= L[j:, :j] L[J, :j]ᵀ`;
    /// the diagonal block is then factored by Cholesky–Crout (each entry one dot product within the
    /// block), `L₁₁`, and the panel below it is one triangular solve with many right-hand sides,
    /// `L₂₁ᵀ = L₁₁⁻¹ A₂₁ᵀ` (on a transposed copy, so each step is an `axpy` over whole rows); `nil` when a
    /// pivot is not positive (A not positive definite).
    ///
    /// Measured (release bench row `P1-ridge/closed-form-factor/2000x500`, n = 500, two runs on the shared
    /// 2-core machine, median / min): finishing the panel entry by entry, one short dot product each,
    /// 4.99 / 4.76 ms; the panel as one triangular solve, copies on raw pointers, 2.63 / 2.42 ms.
    public init?(_ a: [Double], n: Int) {
        self.n = n
        l = [Double](repeating: 0, count: n * n)
        // Scratch: the diagonal block L₁₁ (contiguous), then the panel A₂₁ᵀ.
        var scratch = [Double](repeating: 0, count: blockColumns * (blockColumns + n))
        let ok = l.withUnsafeMutableBufferPointer { lBuffer -> Bool in
            scratch.withUnsafeMutableBufferPointer { scratchBuffer -> Bool in
                let l = lBuffer.baseAddress!, diagonalBlock = scratchBuffer.baseAddress!
                let panel = diagonalBlock + blockColumns * blockColumns
                a.withUnsafeBufferPointer { a in for i in 0..<n { (l + i * n).update(from: a.baseAddress! + i * n, count: i + 1) } }
                for start in stride(from: 0, to: n, by: blockColumns) {
                    let end = min(start + blockColumns, n), width = end - start, below = n - end
                    if start > 0 {
                        MatmulKernel.multiplyAdd(
                            transposeA: false, transposeB: true, m: n - start, n: width, k: start, alpha: -1,
                            a: l + start * n, lda: n, b: l + start * n, ldb: n, beta: 1, c: l + start * n + start, ldc: n)
                        // The GEMM also wrote the strict upper part of the diagonal block: clear it.
                        for i in start..<end { (l + i * n + i + 1).update(repeating: 0, count: end - i - 1) }
                    }
                    for j in start..<end {
                        let d = l[j * n + j] - MatmulKernel.dot(j - start, l + j * n + start, l + j * n + start)
                        if !(d > 0) { return false }
                        let ljj = d.squareRoot()
                        l[j * n + j] = ljj
                        for i in (j + 1)..<end {
                            l[i * n + j] = (l[i * n + j] - MatmulKernel.dot(j - start, l + i * n + start, l + j * n + start)) / ljj
                        }
                        (diagonalBlock + (j - start) * width).update(from: l + j * n + start, count: j - start + 1)
                    }
                    guard below > 0 else { continue }
                    for r in 0..<below { for p in 0..<width { panel[p * below + r] = l[(end + r) * n + start + p] } }
                    solveTriangularInPlace(panel, rows: width, columns: below, matrix: diagonalBlock,
                                           lower: true, transposed: false, unitDiagonal: false)
                    for r in 0..<below { for p in 0..<width { l[(end + r) * n + start + p] = panel[p * below + r] } }
                }
                return true
            }
        }
        if !ok { return nil }
    }

    /// L, row-major `n × n` with zeros above the diagonal (the value of the `cholesky` op).
    var lowerFactor: [Double] { l }

    /// `A⁻¹ B = L⁻ᵀ (L⁻¹ B)` for `columns` right-hand sides stored row-major `[n, columns]`, by
    /// `solveLowerTriangular` twice.
    public func solve(_ b: [Double], columns k: Int = 1) -> [Double] {
        let z = solveLowerTriangular(b, columns: k, lower: l, n: n, transposed: false)
        return solveLowerTriangular(z, columns: k, lower: l, n: n, transposed: true)
    }
}

/// `T⁻¹ B` for `T` the lower triangle of the row-major `n × n` `l` (entries above the diagonal are not
/// read) or, when `transposed`, `Tᵀ⁻¹ B`, for `columns` right-hand sides stored row-major `[n, columns]`:
/// `T z = b` by rows (forward), `Tᵀ x = z` by columns of Tᵀ (rows of T, backward), so both sweeps read
/// `l` contiguously; many right-hand sides (≥ `blockedSolveColumns`) blocked on the GEMM instead.
func solveLowerTriangular(_ b: [Double], columns k: Int, lower l: [Double], n: Int, transposed: Bool) -> [Double] {
    if k >= blockedSolveColumns {
        var x = b
        l.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { x in
                solveTriangularInPlace(x.baseAddress!, rows: n, columns: k, matrix: l.baseAddress!,
                                       lower: !transposed, transposed: transposed, unitDiagonal: false)
            }
        }
        return x
    }
    return l.withUnsafeBufferPointer { l in
        eachColumn(of: b, rows: n, columns: k) { x in
            let l = l.baseAddress!
            if !transposed {
                for i in 0..<n { x[i] = (x[i] - MatmulKernel.dot(i, l + i * n, x)) / l[i * n + i] }
            } else {
                for i in stride(from: n - 1, through: 0, by: -1) {
                    x[i] /= l[i * n + i]
                    MatmulKernel.axpy(i, -x[i], l + i * n, x)
                }
            }
        }
    }
}
