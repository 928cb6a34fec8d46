// Chooses, once at start-up, which compiled variant of the kernels runs: the widest instruction set
// the CPU supports, unless the environment variable HYPERGRADIENT_KERNELS names a narrower one
// ("portable", or "avx2" on an AVX-512 machine). The public entry points of CKernels.h forward to the
// chosen variant.
#include "CKernels.h"
#include "Variants.h"

#include <stdlib.h>
#include <string.h>

static int best_isa = -1, active_isa = -1;

static int detect_best_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return CKernelsAVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CKernelsAVX2;
#endif
    return CKernelsPortable;
}

int ckernels_isa_for_request(const char *requested, int best) {
    if (requested && strcmp(requested, "portable") == 0) return CKernelsPortable;
    if (requested && strcmp(requested, "avx2") == 0 && best >= CKernelsAVX2) return CKernelsAVX2;
    return best;
}

/// Runs when the library is loaded, before any kernel.
__attribute__((constructor)) static void choose_isa(void) {
    best_isa = detect_best_isa();
    active_isa = best_isa;
    active_isa = ckernels_isa_for_request(getenv("HYPERGRADIENT_KERNELS"), best_isa);
}

static inline int current_isa(void) {
    if (active_isa < 0) choose_isa();
    return active_isa;
}

int ckernels_best_isa(void) {
    current_isa();
    return best_isa;
}

int ckernels_active_isa(void) { return current_isa(); }

int ckernels_set_isa(int isa) {
    current_isa();
    active_isa = isa < CKernelsPortable ? CKernelsPortable : (isa > best_isa ? best_isa : isa);
    return active_isa;
}

#if defined(__x86_64__)
#define DISPATCH(name, arguments)                                        \
    switch (current_isa()) {                                             \
    case CKernelsAVX512: return name##_avx512 arguments;                 \
    case CKernelsAVX2: return name##_avx2 arguments;                     \
    default: return name##_portable arguments;                           \
    }
#else
#define DISPATCH(name, arguments) return name##_portable arguments;
#endif

void ckernels_gemm(bool transpose_a, bool transpose_b, long m, long n, long k, double alpha, const double *a,
                   long lda, const double *b, long ldb, double beta, double *c, long ldc) {
    DISPATCH(gemm, (transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
}

void ckernels_gram_rows(long m, long k, const double *a, long lda, long first_row, long rows, double *c, long ldc) {
    DISPATCH(gram_rows, (m, k, a, lda, first_row, rows, c, ldc))
}

void ckernels_gemv(long m, long k, const double *a, long lda, const double *x, double *y) {
    DISPATCH(gemv, (m, k, a, lda, x, y))
}

void ckernels_gemv_transposed(long rows, long width, const double *a, long lda, const double *x, double *y) {
    DISPATCH(gemv_transposed, (rows, width, a, lda, x, y))
}

void ckernels_normal_product(long rows, long d, const double *a, long lda, const double *v, const double *b,
                             double *out) {
    DISPATCH(normal_product, (rows, d, a, lda, v, b, out))
}

double ckernels_dot(long n, const double *x, const double *y) { DISPATCH(dot, (n, x, y)) }

double ckernels_sum(long n, const double *x) { DISPATCH(sum, (n, x)) }

void ckernels_axpy(long n, double alpha, const double *x, double *y) { DISPATCH(axpy, (n, alpha, x, y)) }

void ckernels_tanh(long n, const double *x, double *out) { DISPATCH(tanh, (n, x, out)) }

void ckernels_exp(long n, const double *x, double *out) { DISPATCH(exp, (n, x, out)) }

void ckernels_sigmoid(long n, const double *x, double *out) { DISPATCH(sigmoid, (n, x, out)) }

void ckernels_negate(long n, const double *x, double *out) { DISPATCH(negate, (n, x, out)) }

void ckernels_softplus(long n, const double *x, double *out) { DISPATCH(softplus, (n, x, out)) }

void ckernels_log(long n, const double *x, double *out) { DISPATCH(log, (n, x, out)) }

void ckernels_add(long n, const double *a, long a_step, const double *b, long b_step, double *out) {
    DISPATCH(add, (n, a, a_step, b, b_step, out))
}

void ckernels_subtract(long n, const double *a, long a_step, const double *b, long b_step, double *out) {
    DISPATCH(subtract, (n, a, a_step, b, b_step, out))
}

void ckernels_multiply(long n, const double *a, long a_step, const double *b, long b_step, double *out) {
    DISPATCH(multiply, (n, a, a_step, b, b_step, out))
}

void ckernels_divide(long n, const double *a, long a_step, const double *b, long b_step, double *out) {
    DISPATCH(divide, (n, a, a_step, b, b_step, out))
}
