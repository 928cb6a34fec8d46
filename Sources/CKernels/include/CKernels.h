// CKernels: the package's dense numeric kernels in C, compiled once per instruction set (portable,
// AVX2+FMA, AVX-512) and chosen once at start-up by the CPU's capabilities. Everything above these
// kernels is Swift (Sources/AutoDiff/Kernels). All matrices are row-major with a leading dimension
// (the distance, in elements, between the starts of two rows).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stdbool.h>
#include <stddef.h>

/// The instruction sets a kernel can be compiled for, from the most portable.
enum {
    CKernelsPortable = 0,
    CKernelsAVX2 = 1,
    CKernelsAVX512 = 2
};

/// The widest instruction set this CPU runs (`__builtin_cpu_supports`; always portable off x86-64).
int ckernels_best_isa(void);

/// The instruction set the kernels use now: the best one, or portable when the environment variable
/// `HYPERGRADIENT_KERNELS=portable` was set at start-up.
int ckernels_active_isa(void);

/// The instruction set chosen for the value `requested` of HYPERGRADIENT_KERNELS (null when unset) on a
/// CPU whose best is `best`: "portable" forces the portable kernels, "avx2" selects AVX2 when `best` is
/// at least AVX2, anything else keeps `best`.
int ckernels_isa_for_request(const char *requested, int best);

/// Switches the kernels to `isa`, clamped to what the CPU runs; returns the instruction set now
/// active. For tests that compare the paths in one process; not thread-safe against running kernels.
int ckernels_set_isa(int isa);

/// `C = alpha · op(A) · op(B) + beta · C` for `C` of `m × n`, with `beta` 0 (C is not read) or 1.
/// `op(A)` is `A` (`m × k`, stored with leading dimension `lda`) or, when `transpose_a`, `Aᵀ` with `A`
/// stored `k × m`; likewise `op(B)` (`k × n`). Packed panels and a register-blocked micro-kernel; the
/// sum over k runs in a fixed order (blocks of the packing depth, in order), so a product depends only
/// on the instruction set, never on how its rows are split between threads.
void ckernels_gemm(bool transpose_a, bool transpose_b, long m, long n, long k, double alpha,
                   const double *a, long lda, const double *b, long ldb, double beta, double *c, long ldc);

/// The rows `first_row ..< first_row + rows` of the upper triangle of `C = AᵀA` (`A` stored `k × m` with
/// leading dimension `lda`, C `m × m` with `ldc`) and their mirror images: every entry (i, j ≥ i) of
/// those rows and every entry (j, i) below it is written, nothing else. Calls on disjoint row ranges
/// write disjoint entries (they may run at once), and together the ranges `0 ..< m` fill C exactly
/// symmetric. Each entry has the bits `ckernels_gemm` gives it.
void ckernels_gram_rows(long m, long k, const double *a, long lda, long first_row, long rows, double *c, long ldc);

/// `y[i] = Σ_p A[i, p] x[p]` for the rows `i < m` of `A` (`m × k`, leading dimension `lda`).
void ckernels_gemv(long m, long k, const double *a, long lda, const double *x, double *y);

/// `y[j] = Σ_{p < rows} x[p] A[p, j]` for `j < width` (`y = Aᵀ x`), overwriting `y`.
void ckernels_gemv_transposed(long rows, long width, const double *a, long lda, const double *x, double *y);

/// The fused normal-equation product `out = Aᵀ (A v − b)` over the rows of `A` (`rows × d`, leading
/// dimension `lda`), or `Aᵀ A v` when `b` is null, overwriting `out` (`d`). `A` is streamed once: four
/// rows at a time, `t = A₄ v − b₄`, then `out += A₄ᵀ t` while the rows are in L1.
void ckernels_normal_product(long rows, long d, const double *a, long lda, const double *v, const double *b,
                             double *out);

/// `Σ x[i] y[i]`.
double ckernels_dot(long n, const double *x, const double *y);

/// `Σ x[i]`.
double ckernels_sum(long n, const double *x);

/// `y[i] += alpha · x[i]`.
void ckernels_axpy(long n, double alpha, const double *x, double *y);

/// `out[i] = tanh(x[i])`, within 3 ulp of libm.
void ckernels_tanh(long n, const double *x, double *out);

/// `out[i] = e^{x[i]}`, within 1 ulp of libm (overflow to +∞ above 709.78, underflow to 0 below −745).
void ckernels_exp(long n, const double *x, double *out);

/// `out[i] = 1/(1 + e^{−x[i]})`, from the vector `exp` (within 2 ulp of libm's formula).
void ckernels_sigmoid(long n, const double *x, double *out);

/// `out[i] = −x[i]` (the sign bit flipped).
void ckernels_negate(long n, const double *x, double *out);

/// `out[i] = log(1 + e^{x[i]}) = max(x, 0) + log1p(e^{−|x|})`: vector `exp`, libm `log1p`.
void ckernels_softplus(long n, const double *x, double *out);

/// `out[i] = log(x[i])` by libm.
void ckernels_log(long n, const double *x, double *out);

/// `out[i] = a[i·a_step] + b[i·b_step]`, each step 0 (a broadcast scalar) or 1.
void ckernels_add(long n, const double *a, long a_step, const double *b, long b_step, double *out);

/// `out[i] = a[i·a_step] − b[i·b_step]`, each step 0 or 1.
void ckernels_subtract(long n, const double *a, long a_step, const double *b, long b_step, double *out);

/// `out[i] = a[i·a_step] · b[i·b_step]`, each step 0 or 1.
void ckernels_multiply(long n, const double *a, long a_step, const double *b, long b_step, double *out);

/// `out[i] = a[i·a_step] / b[i·b_step]`, each step 0 or 1.
void ckernels_divide(long n, const double *a, long a_step, const double *b, long b_step, double *out);

/// Runs `task(context, i)` for every `i < count` on the calling thread and the package's persistent
/// worker threads (cores − 1, started on first use), and returns when all have finished. Pieces are
/// handed out in order to whichever thread asks first, so `task` must give the same result whichever
/// thread runs a piece. When the workers are busy with another caller's job (including a nested call
/// from inside `task`), or `count` exceeds 65535, the pieces run serially on the calling thread.
void ckernels_parallel_for(long count, void (*task)(void *context, long index), void *context);

/// The number of worker threads beyond the caller (cores − 1; 0 on one core); starts them if needed.
int ckernels_parallel_workers(void);

#endif
