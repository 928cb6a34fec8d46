// The kernels, written once over a vector of CK_VW doubles and included once per instruction set by
// Portable.c, AVX2.c and AVX512.c, which define:
//   CK_NAME(f)  the function's name for that instruction set (f_portable, f_avx2, f_avx512);
//   CK_VW       doubles per vector register (2, 4, 8);
//   CK_MR       rows of C per micro-kernel tile;
//   CK_NR       columns of C per micro-kernel tile (two vectors).
// Whether `a + b * c` may become one fused multiply-add is set by each including file (#pragma STDC
// FP_CONTRACT): on for AVX2/AVX-512, off for the portable kernels, so the portable results are the same
// bits on every machine.

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef double vd __attribute__((vector_size(CK_VW * 8)));
typedef long long vi __attribute__((vector_size(CK_VW * 8)));

/// Depth of a packed panel (the k extent held in cache per pass) and the rows of A and columns of B
/// packed per block (BLIS's KC, MC, NC): an MC × KC block of A stays in L2, a KC × NC block of B in L3.
enum { KC = 256, MC = CK_MR * 12, NC = 4096 / CK_NR * CK_NR, LANES = CK_VW };

static inline __attribute__((always_inline)) vd load(const double *p) {
    vd v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void store(double *p, vd v) { memcpy(p, &v, sizeof v); }

static inline __attribute__((always_inline)) vd splat(double x) {
    vd v;
    for (int i = 0; i < LANES; i++) v[i] = x;
    return v;
}

/// The lanes of `v` added in lane order.
static inline __attribute__((always_inline)) double lane_sum(vd v) {
    double s = v[0];
    for (int i = 1; i < LANES; i++) s += v[i];
    return s;
}

static inline long min_long(long a, long b) { return a < b ? a : b; }

// MARK: GEMM

/// The CK_MR × CK_NR tile `C = alpha · Ap · Bp (+ C when accumulate)` from a packed A panel
/// (`Ap[p·MR + i]`) and a packed B panel (`Bp[p·NR + j]`) of depth kc. The accumulators live in
/// registers for the whole sum over p.
static void micro_kernel(long kc, const double *ap, const double *bp, double *c, long ldc, double alpha,
                         int accumulate) {
    vd acc[CK_MR][CK_NR / CK_VW];
    for (int i = 0; i < CK_MR; i++)
        for (int j = 0; j < CK_NR / CK_VW; j++) acc[i][j] = splat(0);
    for (long p = 0; p < kc; p++) {
        vd bv[CK_NR / CK_VW];
        for (int j = 0; j < CK_NR / CK_VW; j++) bv[j] = load(bp + p * CK_NR + j * CK_VW);
        for (int i = 0; i < CK_MR; i++) {
            vd av = splat(ap[p * CK_MR + i]);
            for (int j = 0; j < CK_NR / CK_VW; j++) acc[i][j] = acc[i][j] + av * bv[j];
        }
    }
    vd scale = splat(alpha);
    for (int i = 0; i < CK_MR; i++)
        for (int j = 0; j < CK_NR / CK_VW; j++) {
            double *target = c + i * ldc + j * CK_VW;
            store(target, accumulate ? load(target) + scale * acc[i][j] : scale * acc[i][j]);
        }
}

/// Packs `count` lines of a matrix slice into panels of `width` lines, each panel stored depth step by
/// depth step (`panel[p·width + i]`), the last panel padded with zeros. Line i, step p of the slice is
/// `source[i·line_stride + p·depth_stride]`: rows of op(A) or columns of op(B), whichever the
/// transposes make them in memory.
///
/// When the lines are contiguous (a step is a row of the source), the source is read step by step, one
/// row at a time, and scattered to the panels. Replaced (perf, load average 5–6: about a quarter of the
/// cycles of `AᵀA` at 2000×500 in these copies): panel by panel, which read `width` doubles from each of `depth` rows
/// 4 KB apart, a new page at every step, for every panel.
static inline __attribute__((always_inline)) void pack_panels(int width, long count, long depth, const double *source,
                                                              long line_stride, long depth_stride, double *packed) {
    if (depth_stride == 1) {
        for (long start = 0; start < count; start += width) {
            long lines = min_long(width, count - start);
            double *panel = packed + start * depth;
            const double *first = source + start * line_stride;
            for (long i = 0; i < lines; i++)
                for (long p = 0; p < depth; p++) panel[p * width + i] = first[i * line_stride + p];
            for (long p = 0; p < depth; p++)
                for (long i = lines; i < width; i++) panel[p * width + i] = 0;
        }
        return;
    }
    long whole = count / width * width;
    for (long p = 0; p < depth; p++) {
        const double *step = source + p * depth_stride;
        double *target = packed + p * width;
        if (line_stride == 1) {
            for (long start = 0; start < whole; start += width)
                for (int i = 0; i < width; i++) target[start * depth + i] = step[start + i];
        } else {
            for (long start = 0; start < whole; start += width)
                for (int i = 0; i < width; i++) target[start * depth + i] = step[(start + i) * line_stride];
        }
        if (whole < count)
            for (long i = 0; i < width; i++)
                target[whole * depth + i] = whole + i < count ? step[(whole + i) * line_stride] : 0;
    }
}

/// `C = alpha · op(A) · op(B) + beta · C` (beta 0 or 1), BLIS's loop order: for each NC-column block of
/// C and KC-deep slice of k, pack the slice of op(B) into NR-column panels; for each MC-row block, pack
/// op(A) into MR-row panels; then every MR × NR tile of C is one micro-kernel call over the packed
/// panels. Transposes are absorbed by the packing. Tiles on the right or bottom edge are computed into a
/// local tile and copied (the same arithmetic, so an entry's bits do not depend on where the tile falls).
///
/// Measured (one core, CPU time, AVX2, 2000×500×500; per-core peak 39 GFLOP/s at 2.445 GHz): 6×8
/// tiles, KC = 256, MC = 72 give 31–32 GFLOP/s. Slower or no better: 4×12 tiles (16.5 GFLOP/s: the
/// extra B vector per step outweighs the fewer broadcasts), MC = 144 (29–32), KC = 128 or 512 (within
/// the noise). Packing op(B) (and a transposed op(A)) row by row instead of panel by panel (`pack_panels`;
/// one core, thread CPU time, best of 25, the old and new kernels alternating): `AᵀA` by this GEMM
/// 27.7–28.2 → 26.7–27.2 ms and the symmetric `AᵀA` with its mirror 14.7–15.3 → 13.9–14.3 ms at load
/// average 2.6; 37.4–40.5 → 27.9–30.8 ms and 20.9–21.8 → 15.1–17.1 ms at load average 5–6 (other
/// processes evicting the caches and TLB hurt the page-per-step reads most).
///
/// Tried and not kept: a small op(A) (m·k ≤ 16384) read in place by the micro-kernel instead of packed
/// (the P4 MLP's 128×32·32×64 and its 32×128·128×64 adjoint product; the packing is a scalar copy of
/// A per call). Calling thread's CPU time, two binaries alternated six times at load average 2–3,
/// median (minimum) µs: 128×32·32×64 17.5 (16.9) packed, 19.0 (10.2) in place; the staged P4 gradient
/// 69.4 (67.3) against 73.8 (57.5), HVP-rr 113.3 (108.0) against 117.0 (95.1): no gain beyond the noise.
///
/// With `first_row` ≥ 0 the product is the symmetric `AᵀA` (`gram_rows`): C's row 0 is row `first_row` of
/// the whole matrix, only the entries (i, j ≥ i) of the upper triangle are computed, and once a tile's
/// sum is complete its entries above the diagonal are copied to their mirror images (j, i) while the
/// tile is still in L1. Tiles wholly below the diagonal are skipped, and so are the panels of op(B) left
/// of `first_row` (no tile of these rows reaches them); tiles crossing the diagonal are computed into
/// a local tile and only their entries on or above it are stored, so each lower entry is written by one
/// thread only, by the mirror of the upper entry that computed it.
static void gemm_tiles(bool transpose_a, bool transpose_b, long m, long n, long k, double alpha, const double *a,
                       long lda, const double *b, long ldb, double beta, double *c, long ldc, long first_row) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (beta == 0)
            for (long i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(double));
        return;
    }
    int symmetric = first_row >= 0;
    // The whole symmetric matrix (row 0), and the first column (a multiple of NR) any tile reaches.
    double *matrix = symmetric ? c - first_row * ldc : c;
    long first_column = symmetric ? first_row / CK_NR * CK_NR : 0;
    long kc_max = min_long(KC, k);
    long mc_max = min_long(MC, (m + CK_MR - 1) / CK_MR * CK_MR);
    long nc_max = min_long(NC, (n + CK_NR - 1) / CK_NR * CK_NR);
    // The calling thread's scratch (Scratch.c): no allocation once the thread has run a product this size.
    double *packed_a = ckernels_scratch(0, mc_max * kc_max), *packed_b = ckernels_scratch(1, kc_max * nc_max);
    for (long jc = 0; jc < n; jc += NC) {
        long nc = min_long(NC, n - jc);
        long skipped = first_column > jc ? min_long(first_column - jc, nc) : 0;
        if (skipped == nc) continue;
        for (long pc = 0; pc < k; pc += KC) {
            long kc = min_long(KC, k - pc);
            int accumulate = pc > 0 || beta != 0, complete = pc + kc >= k;
            // Column j, step p of op(B) is b[p·ldb + j], or b[j·ldb + p] when transposed.
            long column0 = jc + skipped;
            pack_panels(CK_NR, nc - skipped, kc, transpose_b ? b + column0 * ldb + pc : b + pc * ldb + column0,
                        transpose_b ? ldb : 1, transpose_b ? 1 : ldb, packed_b);
            for (long ic = 0; ic < m; ic += MC) {
                long mc = min_long(MC, m - ic);
                // Row i, step p of op(A) is a[i·lda + p], or a[p·lda + i] when transposed.
                pack_panels(CK_MR, mc, kc, transpose_a ? a + pc * lda + ic : a + ic * lda + pc, transpose_a ? 1 : lda,
                            transpose_a ? lda : 1, packed_a);
                for (long jr = skipped; jr < nc; jr += CK_NR) {
                    long nr = min_long(CK_NR, nc - jr);
                    for (long ir = 0; ir < mc; ir += CK_MR) {
                        long mr = min_long(CK_MR, mc - ir);
                        double *tile = c + (ic + ir) * ldc + jc + jr;
                        // The tile's first row and column in the whole symmetric matrix.
                        long row = first_row + ic + ir, column = jc + jr;
                        if (symmetric && row >= column + nr) continue;
                        int crossing = symmetric && row + mr - 1 > column;
                        const double *ap = packed_a + ir * kc, *bp = packed_b + (jr - skipped) * kc;
                        if (mr == CK_MR && nr == CK_NR && !crossing) {
                            micro_kernel(kc, ap, bp, tile, ldc, alpha, accumulate);
                        } else {
                            double edge[CK_MR * CK_NR];
                            micro_kernel(kc, ap, bp, edge, CK_NR, 1, 0);
                            for (long i = 0; i < mr; i++)
                                for (long j = crossing ? (row + i > column ? row + i - column : 0) : 0; j < nr; j++)
                                    tile[i * ldc + j] = accumulate ? tile[i * ldc + j] + alpha * edge[i * CK_NR + j]
                                                                   : alpha * edge[i * CK_NR + j];
                        }
                        if (symmetric && complete)
                            for (long j = 0; j < nr; j++)
                                for (long i = 0; i < mr && row + i < column + j; i++)
                                    matrix[(column + j) * ldc + row + i] = tile[i * ldc + j];
                    }
                }
            }
        }
    }
}

void CK_NAME(gemm)(bool transpose_a, bool transpose_b, long m, long n, long k, double alpha, const double *a,
                   long lda, const double *b, long ldb, double beta, double *c, long ldc) {
    gemm_tiles(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, -1);
}

void CK_NAME(gram_rows)(long m, long k, const double *a, long lda, long first_row, long rows, double *c, long ldc) {
    gemm_tiles(true, false, rows, m, k, 1, a + first_row, lda, a, lda, 0, c + first_row * ldc, ldc, first_row);
}

// MARK: Matrix·vector

/// `Σ_p row[p] x[p]` with one vector accumulator (the same order as each row of `rows4_dot`).
static inline __attribute__((always_inline)) double row_dot(long k, const double *row, const double *x) {
    vd s = splat(0);
    long p = 0;
    for (; p + LANES <= k; p += LANES) s = s + load(row + p) * load(x + p);
    double total = lane_sum(s);
    for (; p < k; p++) total = total + row[p] * x[p];
    return total;
}

/// `out[0..3] = rows r0 … r3 (lda apart) · x`, one vector accumulator per row, lanes added in order.
static inline __attribute__((always_inline)) void dot_rows4(long k, const double *r0, long lda, const double *x,
                                                            double *out) {
    const double *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    vd s0 = splat(0), s1 = splat(0), s2 = splat(0), s3 = splat(0);
    long p = 0;
    for (; p + LANES <= k; p += LANES) {
        vd xv = load(x + p);
        s0 = s0 + load(r0 + p) * xv;
        s1 = s1 + load(r1 + p) * xv;
        s2 = s2 + load(r2 + p) * xv;
        s3 = s3 + load(r3 + p) * xv;
    }
    double t0 = lane_sum(s0), t1 = lane_sum(s1), t2 = lane_sum(s2), t3 = lane_sum(s3);
    for (; p < k; p++) {
        t0 = t0 + r0[p] * x[p];
        t1 = t1 + r1[p] * x[p];
        t2 = t2 + r2[p] * x[p];
        t3 = t3 + r3[p] * x[p];
    }
    out[0] = t0;
    out[1] = t1;
    out[2] = t2;
    out[3] = t3;
}

/// `y[j] += c[0] r0[j] + c[1] r1[j] + c[2] r2[j] + c[3] r3[j]` (added in that order) for `j < width`,
/// rows `lda` apart: one load and store of y per four rows.
static inline __attribute__((always_inline)) void accumulate_rows4(long width, const double *r0, long lda,
                                                                   const double *c, double *y) {
    const double *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    vd c0 = splat(c[0]), c1 = splat(c[1]), c2 = splat(c[2]), c3 = splat(c[3]);
    long j = 0;
    for (; j + LANES <= width; j += LANES) {
        vd v = load(y + j);
        v = v + c0 * load(r0 + j);
        v = v + c1 * load(r1 + j);
        v = v + c2 * load(r2 + j);
        v = v + c3 * load(r3 + j);
        store(y + j, v);
    }
    for (; j < width; j++) {
        double v = y[j];
        v = v + c[0] * r0[j];
        v = v + c[1] * r1[j];
        v = v + c[2] * r2[j];
        v = v + c[3] * r3[j];
        y[j] = v;
    }
}

/// `y[j] += c · row[j]` for `j < width`.
static inline __attribute__((always_inline)) void accumulate_row(long width, const double *row, double c, double *y) {
    vd coefficient = splat(c);
    long j = 0;
    for (; j + LANES <= width; j += LANES) store(y + j, load(y + j) + coefficient * load(row + j));
    for (; j < width; j++) y[j] = y[j] + c * row[j];
}

/// Four rows at a time (`dot_rows4`). Measured (one core, best of 3000 calls, AVX2) and not kept: two
/// accumulators per row (eight FMA chains): 136.7 against 141.8 µs at 2000×500, 0.85 against 0.93 µs
/// at 100×96, within the run-to-run noise: the pass runs at the rate A arrives from L2/L3.
void CK_NAME(gemv)(long m, long k, const double *a, long lda, const double *x, double *y) {
    long i = 0;
    for (; i + 4 <= m; i += 4) dot_rows4(k, a + i * lda, lda, x, y + i);
    for (; i < m; i++) y[i] = row_dot(k, a + i * lda, x);
}

void CK_NAME(gemv_transposed)(long rows, long width, const double *a, long lda, const double *x, double *y) {
    memset(y, 0, (size_t)width * sizeof(double));
    long p = 0;
    for (; p + 4 <= rows; p += 4) accumulate_rows4(width, a + p * lda, lda, x + p, y);
    for (; p < rows; p++) accumulate_row(width, a + p * lda, x[p], y);
}

/// Four rows at a time: their dot products with v (the rows come from memory or L3 once), then, while
/// the four rows sit in L1, their scaled sum into out.
///
/// Measured (one core, CPU time, 2000×500, AVX2) and not kept: blocks of 32 rows held in L2 (a
/// matrix·vector product over the block, then the transposed product over it again): 281 µs against
/// 171 µs for one matrix·vector product, since the second pass re-read L2; four rows from L1 take
/// 240–262 µs. Also tried: software prefetch of the next four rows during the second pass, and eight
/// rows at a time (fewer loads and stores of out): 232–261 µs, within the run-to-run noise.
///
/// Measured again (one core, best of 2000 calls, 2000×500; AVX2): this kernel 211.7–235.6 µs, one pass
/// of A alone 126–141 µs (`gemv`, `gemv_transposed`, a plain sum: the L3 stream runs at about one
/// vector per cycle), so the re-read of four rows from L1 costs the other ~85 µs. Not kept: two
/// accumulators per row in the dot products (eight FMA chains; 231.8 against 283.3 µs in one run,
/// 100×100: 1.8 µs both: the pass is not FMA-latency-bound), eight rows at a time again (234.4 against
/// 229.3 µs), and one software-pipelined sweep per four rows that computes their dot products while it
/// adds the previous four rows' scaled sum into out (same bits; 225.9 against 211.7 µs: the L1 re-read
/// and the L3 stream do not overlap). Two cores on the worker pool: 107–118 µs (about 70 GB/s).
void CK_NAME(normal_product)(long rows, long d, const double *a, long lda, const double *v, const double *b,
                             double *out) {
    memset(out, 0, (size_t)d * sizeof(double));
    long p = 0;
    double t[4];
    for (; p + 4 <= rows; p += 4) {
        dot_rows4(d, a + p * lda, lda, v, t);
        if (b)
            for (int i = 0; i < 4; i++) t[i] = t[i] - b[p + i];
        accumulate_rows4(d, a + p * lda, lda, t, out);
    }
    for (; p < rows; p++) {
        double residual = row_dot(d, a + p * lda, v) - (b ? b[p] : 0);
        accumulate_row(d, a + p * lda, residual, out);
    }
}

// MARK: Vectors

double CK_NAME(dot)(long n, const double *x, const double *y) {
    vd s0 = splat(0), s1 = splat(0);
    long i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        s0 = s0 + load(x + i) * load(y + i);
        s1 = s1 + load(x + i + LANES) * load(y + i + LANES);
    }
    double s = lane_sum(s0 + s1);
    for (; i < n; i++) s = s + x[i] * y[i];
    return s;
}

double CK_NAME(sum)(long n, const double *x) {
    vd s0 = splat(0), s1 = splat(0);
    long i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES) {
        s0 = s0 + load(x + i);
        s1 = s1 + load(x + i + LANES);
    }
    double s = lane_sum(s0 + s1);
    for (; i < n; i++) s = s + x[i];
    return s;
}

void CK_NAME(axpy)(long n, double alpha, const double *x, double *y) {
    vd scale = splat(alpha);
    long i = 0;
    for (; i + LANES <= n; i += LANES) store(y + i, load(y + i) + scale * load(x + i));
    for (; i < n; i++) y[i] = y[i] + alpha * x[i];
}

#include "KernelElementwise.h"
