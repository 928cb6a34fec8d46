import Dispatch
import Foundation

/// Dense matrix-product kernels on raw row-major buffers.
///
/// Every product is reduced to two SIMD primitives over contiguous rows: `dot` (matrix·vector, and
/// products whose right operand is read transposed) and `axpy` (vector·matrix, transposed matrix·vector,
/// and the i-p-j matrix·matrix loop, which streams rows of B into rows of C). Products of at least
/// `parallelThreshold` multiply-adds are split across the cores into disjoint blocks of output rows
/// (or columns), each computed in the same order as the serial loop, so results do not depend on the
/// number of threads.
enum MatmulKernel {
    /// Multiply-adds above which a product is split across cores (measured: below it the dispatch
    /// costs more than it saves).
    static let parallelThreshold = 1 << 17
    /// Cores used for large products.
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

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
            // c = A b: one dot product per row of A.
            split(m, work) { rows in for i in rows { c[i] = dot(k, a + i * k, b) } }
        } else if n == 1 || (m == 1 && !transposeB) {
            // c = Aᵀ b (a stored k×m) or c = aᵀ B (b stored k×n): Σₚ coefficient[p] · row p, split by columns.
            let (matrix, vector, width) = n == 1 ? (a, b, m) : (b, a, n)
            split(width, work) { columns in
                let out = c + columns.lowerBound, count = columns.count
                out.update(repeating: 0, count: count)
                for p in 0..<k { axpy(count, vector[p], matrix + p * width + columns.lowerBound, out) }
            }
        } else if transposeB {
            // Rows of op(b) are rows of b: every entry is a dot product.
            withRowsOfA(transposeA, m: m, k: k, a) { rowsOfA in
                split(m, work) { rows in
                    for i in rows { for j in 0..<n { c[i * n + j] = dot(k, rowsOfA + i * k, b + j * k) } }
                }
            }
        } else {
            // The i-p-j loop: row i of C accumulates a[i, p] · row p of B.
            split(m, work) { rows in
                for i in rows {
                    let out = c + i * n
                    out.update(repeating: 0, count: n)
                    for p in 0..<k {
                        let coefficient = transposeA ? a[p * m + i] : a[i * k + p]
                        axpy(n, coefficient, b + p * n, out)
                    }
                }
            }
        }
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
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                body((piece * count / pieces)..<((piece + 1) * count / pieces))
            }
        }
    }

    /// `Σᵢ x[i] y[i]` with two four-wide accumulators.
    @inline(__always)
    static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>()
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        while i + 8 <= n {
            s0 += rx.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
                * ry.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            s1 += rx.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
                * ry.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD4<Double>.self)
            i += 8
        }
        var s = (s0 + s1).sum()
        while i < n {
            s += x[i] * y[i]
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
}
