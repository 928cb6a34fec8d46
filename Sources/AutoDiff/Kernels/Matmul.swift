import Dispatch
import Foundation

/// Dense matrix-product kernels on raw row-major buffers.
///
/// Every product is reduced to SIMD primitives over contiguous rows, blocked four rows at a time so each
/// load of the shared operand serves four rows: `dot4`/`dot` (matrix·vector, and products whose right
/// operand is read transposed) and `axpy4`/`axpy` (vector·matrix, transposed matrix·vector, and the
/// i-p-j matrix·matrix loop, which streams rows of B into rows of C). Products of at least
/// `parallelThreshold` multiply-adds are split across the cores. Row-parallel products split their output
/// rows; the sums over rows (`Aᵀb`, `bᵀA`) are cut into a number of row blocks fixed by the shape alone
/// (`reductionBlocks`), each summed into its own partial and the partials added in block order, so results
/// depend only on the shapes, never on the number of cores or threads.
///
/// Measured and not kept, on the 128-bit SIMD this package compiles to: cache-blocked panels of B in the
/// i-p-j loop (AᵀA at 2000×500: 45 → 71 ms) and a packed 4×4 register-tile kernel (128×32·32×64:
/// 35 → 48 µs); hardware prefetch already streams the rows, and the loop is bound by arithmetic.
enum MatmulKernel {
    /// Multiply-adds above which a product is split across cores (measured: below it the dispatch
    /// costs more than it saves).
    static let parallelThreshold = 1 << 17
    /// Cores used for large products.
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The row blocks of a large sum over rows (at least 64 rows each).
    static let reductionBlocks = 8

    /// `c[m×n] = op(a) · op(b)`, overwriting `c`.
    ///
    /// `op(a)` is `a` (stored `m×k`) or, when `transposeA`, `aᵀ` with `a` stored `k×m`; likewise `op(b)`
    /// is `b` (stored `k×n`) or `bᵀ` with `b` stored `n×k`. All buffers are row-major and contiguous.
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: UnsafePointer<Double>, b: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>
    ) {
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            c.update(repeating: 0, count: m * n)
            return
        }
        let work = m * n * k
        if n == 1 && !transposeA {
            // c = A b: one dot product per row of A, four rows at a time.
            split(m, work) { rows in rowDots(rows, k, a, b, c) }
        } else if n == 1 || (m == 1 && !transposeB) {
            // c = Aᵀ b (a stored k×m) or c = aᵀ B (b stored k×n): Σₚ coefficient[p] · row p.
            let (matrix, vector, width) = n == 1 ? (a, b, m) : (b, a, n)
            sumOfScaledRows(rows: k, width: width, matrix, vector, c, work: work)
        } else if transposeB {
            // Rows of op(b) are rows of b: entry (i, j) is a dot product; four columns j at a time.
            withRowsOfA(transposeA, m: m, k: k, a) { rowsOfA in
                split(m, work) { rows in
                    for i in rows { rowDots(0..<n, k, b, rowsOfA + i * k, c + i * n) }
                }
            }
        } else if transposeA && a == b && m == n {
            // C = AᵀA is symmetric: row i of its upper triangle accumulates a[p, i] · row p of A from
            // column i on, then the lower triangle is mirrored (c[j, i] sums the same products in the same
            // order, so the mirror is bit-identical to computing it).
            splitTriangle(m, work) { rows in
                for i in rows { scaledRows(0..<k, m - i, stride: m, a + i, c + i * m + i) { p in a[p * m + i] } }
            }
            for i in 1..<m { for j in 0..<i { c[i * m + j] = c[j * m + i] } }
        } else {
            // The i-p-j loop: row i of C accumulates a[i, p] · row p of B, four p at a time.
            split(m, work) { rows in
                for i in rows {
                    scaledRows(0..<k, n, b, c + i * n) { p in transposeA ? a[p * m + i] : a[i * k + p] }
                }
            }
        }
    }

    /// `out[i] = row i of matrix · vector` for the rows `rows` (stored with `length` columns).
    @inline(__always)
    private static func rowDots(
        _ rows: Range<Int>, _ length: Int, _ matrix: UnsafePointer<Double>, _ vector: UnsafePointer<Double>,
        _ out: UnsafeMutablePointer<Double>
    ) {
        var i = rows.lowerBound
        while i + 4 <= rows.upperBound {
            let s = dot4(length, matrix + i * length, vector)
            out[i] = s[0]; out[i + 1] = s[1]; out[i + 2] = s[2]; out[i + 3] = s[3]
            i += 4
        }
        while i < rows.upperBound {
            out[i] = dot(length, matrix + i * length, vector)
            i += 1
        }
    }

    /// `out = Σ_{p ∈ rows} coefficient(p) · row p`, over the first `width` entries of rows `stride` apart
    /// (default: `width`, contiguous rows), overwriting `out`.
    @inline(__always)
    private static func scaledRows(
        _ rows: Range<Int>, _ width: Int, stride: Int? = nil, _ matrix: UnsafePointer<Double>,
        _ out: UnsafeMutablePointer<Double>, coefficient: (Int) -> Double
    ) {
        let stride = stride ?? width
        out.update(repeating: 0, count: width)
        var p = rows.lowerBound
        while p + 4 <= rows.upperBound {
            let c = SIMD4(coefficient(p), coefficient(p + 1), coefficient(p + 2), coefficient(p + 3))
            axpy4(width, stride: stride, c, matrix + p * stride, out)
            p += 4
        }
        while p < rows.upperBound {
            axpy(width, coefficient(p), matrix + p * stride, out)
            p += 1
        }
    }

    /// `c = Σ_{p<rows} vector[p] · row p of matrix`, in `reductionBlocks` row blocks for large products
    /// (partials summed in block order), in one block otherwise: the order depends only on the shape.
    private static func sumOfScaledRows(
        rows: Int, width: Int, _ matrix: UnsafePointer<Double>, _ vector: UnsafePointer<Double>,
        _ c: UnsafeMutablePointer<Double>, work: Int
    ) {
        let blocks = work >= parallelThreshold ? max(1, min(reductionBlocks, rows / 64)) : 1
        guard blocks > 1 else { return scaledRows(0..<rows, width, matrix, c) { vector[$0] } }
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: (blocks - 1) * width)
        defer { partials.deallocate() }
        parallelFor(blocks) { block in
            let out = block == 0 ? c : partials + (block - 1) * width
            scaledRows((block * rows / blocks)..<((block + 1) * rows / blocks), width, matrix, out) { vector[$0] }
        }
        for block in 1..<blocks { axpy(width, 1, partials + (block - 1) * width, c) }
    }

    /// Calls `body` with `op(a)` as contiguous rows (`m×k`): `a` itself, or a transposed copy.
    private static func withRowsOfA(
        _ transposeA: Bool, m: Int, k: Int, _ a: UnsafePointer<Double>, _ body: (UnsafePointer<Double>) -> Void
    ) {
        guard transposeA else { return body(a) }
        let copy = UnsafeMutablePointer<Double>.allocate(capacity: m * k)
        defer { copy.deallocate() }
        for p in 0..<k { for i in 0..<m { copy[i * k + p] = a[p * m + i] } }
        body(copy)
    }

    /// Runs `body` over `0..<count`, in one piece or split into one contiguous block per core when
    /// `work` is large.
    private static func split(_ count: Int, _ work: Int, _ body: (Range<Int>) -> Void) {
        let pieces = work >= parallelThreshold ? min(cores, count) : 1
        guard pieces > 1 else { return body(0..<count) }
        parallelFor(pieces) { piece in body((piece * count / pieces)..<((piece + 1) * count / pieces)) }
    }

    /// Runs `body` over the rows `0..<count` of an upper triangle (row i costs `count − i`), split when
    /// `work` is large into one block per core of equal cost: block q ends at row `count·(1 − √(1 − q/P))`.
    private static func splitTriangle(_ count: Int, _ work: Int, _ body: (Range<Int>) -> Void) {
        let pieces = work >= parallelThreshold ? min(cores, count) : 1
        guard pieces > 1 else { return body(0..<count) }
        func boundary(_ q: Int) -> Int {
            q == pieces ? count : Int(Double(count) * (1 - (1 - Double(q) / Double(pieces)).squareRoot()))
        }
        parallelFor(pieces) { q in body(boundary(q)..<boundary(q + 1)) }
    }

    /// `Σᵢ x[i] y[i]`.
    @inline(__always)
    static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        return sumOfTerms(n, lanes: { offset in
            rx.loadUnaligned(fromByteOffset: offset, as: SIMD4<Double>.self)
                * ry.loadUnaligned(fromByteOffset: offset, as: SIMD4<Double>.self)
        }, term: { x[$0] * y[$0] })
    }

    /// `Σᵢ x[i]`.
    @inline(__always)
    static func sum(_ n: Int, _ x: UnsafePointer<Double>) -> Double {
        let rx = UnsafeRawPointer(x)
        return sumOfTerms(n, lanes: { rx.loadUnaligned(fromByteOffset: $0, as: SIMD4<Double>.self) }, term: { x[$0] })
    }

    /// `Σ_{i<n} term(i)` with two four-wide accumulators (eight independent partial sums, so the adds do
    /// not wait on each other): `lanes(byteOffset)` gives the terms `i … i+3` at byte offset `8i`, `term`
    /// one term of the tail.
    @inline(__always)
    private static func sumOfTerms(
        _ n: Int, lanes: (Int) -> SIMD4<Double>, term: (Int) -> Double
    ) -> Double {
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>()
        var i = 0
        while i + 8 <= n {
            s0 += lanes(i * 8)
            s1 += lanes(i * 8 + 32)
            i += 8
        }
        var s = (s0 + s1).sum()
        while i < n {
            s += term(i)
            i += 1
        }
        return s
    }

    /// `y[i] += alpha · x[i]`.
    @inline(__always)
    static func axpy(_ n: Int, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        let a = SIMD4<Double>(repeating: alpha)
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        var i = 0
        while i + 8 <= n {
            let y0 = ry.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            let y1 = ry.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
            ry.storeBytes(of: y0 + a * rx.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self),
                          toByteOffset: i * 8, as: SIMD4<Double>.self)
            ry.storeBytes(of: y1 + a * rx.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self),
                          toByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
            i += 8
        }
        while i < n {
            y[i] += alpha * x[i]
            i += 1
        }
    }

    /// The dot products of four consecutive rows (`a`, `a + n`, `a + 2n`, `a + 3n`) with `y`, sharing the
    /// loads of `y`.
    @inline(__always)
    static func dot4(_ n: Int, _ a: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> SIMD4<Double> {
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), s2 = SIMD4<Double>(), s3 = SIMD4<Double>()
        let r0 = UnsafeRawPointer(a), r1 = UnsafeRawPointer(a + n), r2 = UnsafeRawPointer(a + 2 * n)
        let r3 = UnsafeRawPointer(a + 3 * n), ry = UnsafeRawPointer(y)
        var i = 0
        while i + 4 <= n {
            let v = ry.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            s0 += r0.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self) * v
            s1 += r1.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self) * v
            s2 += r2.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self) * v
            s3 += r3.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self) * v
            i += 4
        }
        var out = SIMD4<Double>(s0.sum(), s1.sum(), s2.sum(), s3.sum())
        while i < n {
            out += SIMD4(a[i], a[n + i], a[2 * n + i], a[3 * n + i]) * y[i]
            i += 1
        }
        return out
    }

    /// `y[i] += Σⱼ c[j] · x[j·stride + i]` for `i < n` and four rows of `x` `stride` apart: one load and
    /// store of `y` per four rows.
    @inline(__always)
    static func axpy4(
        _ n: Int, stride: Int, _ c: SIMD4<Double>, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>
    ) {
        let r0 = UnsafeRawPointer(x), r1 = UnsafeRawPointer(x + stride), r2 = UnsafeRawPointer(x + 2 * stride)
        let r3 = UnsafeRawPointer(x + 3 * stride), ry = UnsafeMutableRawPointer(y)
        let c0 = SIMD4(repeating: c[0]), c1 = SIMD4(repeating: c[1]), c2 = SIMD4(repeating: c[2]), c3 = SIMD4(repeating: c[3])
        var i = 0
        while i + 4 <= n {
            var v = ry.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            v += c0 * r0.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            v += c1 * r1.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            v += c2 * r2.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            v += c3 * r3.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            ry.storeBytes(of: v, toByteOffset: i * 8, as: SIMD4<Double>.self)
            i += 4
        }
        while i < n {
            y[i] += c[0] * x[i] + c[1] * x[stride + i] + c[2] * x[2 * stride + i] + c[3] * x[3 * stride + i]
            i += 1
        }
    }
}
