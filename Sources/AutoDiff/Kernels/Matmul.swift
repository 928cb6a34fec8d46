import CKernels
import Foundation

/// Dense matrix products on raw row-major buffers: the Swift side of the C kernels (`CKernels`), which
/// choose the splits across cores and the reduction order; the arithmetic runs in C, compiled per
/// instruction set and dispatched once at start-up (`KernelDispatch`).
///
/// - Matrix·matrix: `ckernels_gemm`, BLIS-style (packed panels of A and B, a register-blocked
///   micro-kernel: 6×8 with AVX2+FMA, 12×16 with AVX-512, 4×4 portable). Large products are split into
///   one block of C's rows (or columns, when C is wide) per core; every entry of C sums over k in the
///   same order whatever the split, so results do not depend on the number of cores.
/// - `AᵀA` of one matrix computes the upper triangle's tiles and mirrors it (about half the work).
/// - Matrix·vector: `ckernels_gemv` (rows, split across cores) and `ckernels_gemv_transposed` (a sum
///   over rows, cut into a number of row blocks fixed by the shape alone, `reductionBlocks`, whose
///   partials are added in block order: deterministic for any number of cores).
/// - The fused normal-equation product `Aᵀ(A v − b)` (`normalProduct`), streaming A once.
///
/// Measured and not kept: on 128-bit Swift SIMD (before the C kernels), cache-blocked panels of B in the
/// i-p-j loop (AᵀA at 2000×500: 45 → 71 ms) and a packed 4×4 register tile in Swift (128×32·32×64:
/// 35 → 48 µs), because Swift compiles for baseline x86-64 (no AVX, no FMA) and the 4×4 tile spilled.
enum MatmulKernel {
    /// Multiply-adds above which a product is split across cores (measured: below it the dispatch
    /// costs more than it saves).
    static let parallelThreshold = 1 << 17
    /// Cores used for large products.
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The row blocks of a large sum over rows (at least 64 rows each).
    ///
    /// Measured (2 cores, best of 2000 calls on the worker pool, fused `Aᵀ(A v − b)`): 4 blocks 111.8 µs
    /// at 2000×500 and 12.3–13.8 µs at 1000×100, against 8 blocks 118.5 µs and 12.9–14.7 µs (each block
    /// adds a partial to zero and to sum) and 2 blocks 107.1 µs and 12.0–12.9 µs; 4 keeps a 4-core
    /// machine busy at a small cost here.
    static let reductionBlocks = 4

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
        if n == 1 {
            // A b (a stored m×k) by row dot products, or Aᵀ b (a stored k×m) as a sum of scaled rows.
            if transposeA { return sumOfScaledRows(rows: k, width: m, a, b, c, work: work) }
            return split(m, work) { rows in ckernels_gemv(rows.count, k, a + rows.lowerBound * k, k, b, c + rows.lowerBound) }
        }
        if m == 1 {
            // aᵀ B: the same two products with the roles of a and b exchanged.
            if !transposeB { return sumOfScaledRows(rows: k, width: n, b, a, c, work: work) }
            return split(n, work) { columns in
                ckernels_gemv(columns.count, k, b + columns.lowerBound * k, k, a, c + columns.lowerBound)
            }
        }
        if transposeA && a == b && m == n { return gram(m: m, k: k, a, c, work: work) }
        multiplyAdd(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                    a: a, lda: transposeA ? m : k, b: b, ldb: transposeB ? k : n, beta: 0, c: c, ldc: n)
    }

    /// `C = alpha · op(A) · op(B) + beta · C` (`beta` 0 or 1) on strided row-major blocks (leading
    /// dimensions `lda`, `ldb`, `ldc`), split into one block of C's rows per core, or of its columns when
    /// C is wider than tall, for large products. Every entry of C sums over k in the same order whatever
    /// the split.
    static func multiplyAdd(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        guard m > 0 && n > 0 else { return }
        let work = m * n * k
        if m >= n {
            split(m, work) { rows in
                let rowsOfA = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
                ckernels_gemm(transposeA, transposeB, rows.count, n, k, alpha, rowsOfA, lda, b, ldb, beta, c + rows.lowerBound * ldc, ldc)
            }
        } else {
            split(n, work) { columns in
                let columnsOfB = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
                ckernels_gemm(transposeA, transposeB, m, columns.count, k, alpha, a, lda, columnsOfB, ldb, beta, c + columns.lowerBound, ldc)
            }
        }
    }

    /// `C = AᵀA` (`a` stored `k×m`), symmetric: `ckernels_gram_rows` computes the upper triangle's tiles
    /// (tiles wholly below the diagonal skipped: about half the work, one packing) and writes each
    /// finished tile's mirror image while it is in L1; the rows are split into one block of equal work
    /// per core.
    ///
    /// Measured and not kept (one core, CPU time, 2000×500): one GEMM per block of 64 rows, each from its
    /// diagonal on, 29–33 ms against 36–37 ms for the full product, because every block packed its own
    /// copy of A. Replaced: a separate mirror pass over the 2 MB result after the triangle (strided reads
    /// down the columns).
    private static func gram(m: Int, k: Int, _ a: UnsafePointer<Double>, _ c: UnsafeMutablePointer<Double>, work: Int) {
        splitTriangle(m, work) { rows in ckernels_gram_rows(m, k, a, m, rows.lowerBound, rows.count, c, m) }
    }

    /// Runs `body` over the rows `0..<count` of an upper triangle (row i costs `count − i`), split when
    /// `work` is large into one block per core of equal cost: block q ends at row `count·(1 − √(1 − q/P))`.
    ///
    /// Measured and not kept (the blocks run one after another on one core, thread CPU time, 2000×500,
    /// AVX2): more blocks than cores, so a core the machine takes away leaves fewer rows behind: 2 blocks
    /// 15.6–16.3 ms in all, 4 blocks 18.3–18.6, 8 blocks 22.4–23.6 (each block packs its own panels).
    private static func splitTriangle(_ count: Int, _ work: Int, _ body: (Range<Int>) -> Void) {
        let pieces = work >= parallelThreshold ? min(cores, count) : 1
        guard pieces > 1 else { return body(0..<count) }
        func boundary(_ q: Int) -> Int {
            q == pieces ? count : Int(Double(count) * (1 - (1 - Double(q) / Double(pieces)).squareRoot()))
        }
        parallelFor(pieces) { q in body(boundary(q)..<boundary(q + 1)) }
    }

    /// `c = Σ_{p<rows} vector[p] · row p of matrix` (rows of `width`), in `reductionBlocks` row blocks
    /// for large products (partials summed in block order), in one block otherwise: the order depends only
    /// on the shape.
    private static func sumOfScaledRows(
        rows: Int, width: Int, _ matrix: UnsafePointer<Double>, _ vector: UnsafePointer<Double>,
        _ c: UnsafeMutablePointer<Double>, work: Int
    ) {
        inRowBlocks(rows: rows, width: width, c, work: work) { range, out in
            ckernels_gemv_transposed(range.count, width, matrix + range.lowerBound * width, width, vector + range.lowerBound, out)
        }
    }

    /// The fused normal-equation product `out = Aᵀ(A v − b)` (or `AᵀA v` without `b`) of `a` stored
    /// `rows × columns`, streaming A once (`ckernels_normal_product`: four rows at a time, reused from L1); large
    /// products are cut into row blocks fixed by the shape, summed in block order.
    static func normalProduct(
        rows: Int, columns: Int, a: UnsafePointer<Double>, v: UnsafePointer<Double>, b: UnsafePointer<Double>?,
        out: UnsafeMutablePointer<Double>
    ) {
        guard columns > 0 else { return }
        inRowBlocks(rows: rows, width: columns, out, work: 2 * rows * columns) { range, partial in
            ckernels_normal_product(
                range.count, columns, a + range.lowerBound * columns, columns, v, b.map { $0 + range.lowerBound }, partial)
        }
    }

    /// Runs `body(rowRange, out)` over `rows` cut into row blocks (fixed by the shape: `reductionBlocks`
    /// of at least 64 rows when `work` is large, else one), each writing `width` values into its own
    /// partial (the first block straight into `c`), and adds the partials into `c` in block order.
    private static func inRowBlocks(
        rows: Int, width: Int, _ c: UnsafeMutablePointer<Double>, work: Int,
        _ body: (Range<Int>, UnsafeMutablePointer<Double>) -> Void
    ) {
        let blocks = work >= parallelThreshold ? max(1, min(reductionBlocks, rows / 64)) : 1
        guard blocks > 1 else { return body(0..<rows, c) }
        // On the stack when small (withUnsafeTemporaryAllocation): a loop of gradient steps calls this
        // thousands of times.
        withUnsafeTemporaryAllocation(of: Double.self, capacity: (blocks - 1) * width) { buffer in
            let partials = buffer.baseAddress!
            parallelFor(blocks) { block in
                body((block * rows / blocks)..<((block + 1) * rows / blocks), block == 0 ? c : partials + (block - 1) * width)
            }
            for block in 1..<blocks { axpy(width, 1, partials + (block - 1) * width, c) }
        }
    }

    /// Runs `body` over `0..<count`, in one piece or split into one contiguous block per core when
    /// `work` is large.
    private static func split(_ count: Int, _ work: Int, _ body: (Range<Int>) -> Void) {
        let pieces = work >= parallelThreshold ? min(cores, count) : 1
        guard pieces > 1 else { return body(0..<count) }
        parallelFor(pieces) { piece in body((piece * count / pieces)..<((piece + 1) * count / pieces)) }
    }

    /// `Σᵢ x[i] y[i]`.
    @inline(__always)
    static func dot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double { ckernels_dot(n, x, y) }

    /// `Σᵢ x[i]`.
    @inline(__always)
    static func sum(_ n: Int, _ x: UnsafePointer<Double>) -> Double { ckernels_sum(n, x) }

    /// `y[i] += alpha · x[i]`.
    @inline(__always)
    static func axpy(_ n: Int, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        ckernels_axpy(n, alpha, x, y)
    }
}
