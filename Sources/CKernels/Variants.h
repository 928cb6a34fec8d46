// The per-instruction-set variants of every kernel (defined by Portable.c, AVX2.c, AVX512.c through
// KernelBody.h) and the signatures they share.
#ifndef CKERNELS_VARIANTS_H
#define CKERNELS_VARIANTS_H

#include <stdbool.h>

#define CK_DECLARE(suffix)                                                                                   \
    void gemm_##suffix(bool, bool, long, long, long, double, const double *, long, const double *, long,      \
                       double, double *, long);                                                              \
    void gram_rows_##suffix(long, long, const double *, long, long, long, double *, long);                  \
    void gemv_##suffix(long, long, const double *, long, const double *, double *);                          \
    void gemv_transposed_##suffix(long, long, const double *, long, const double *, double *);               \
    void normal_product_##suffix(long, long, const double *, long, const double *, const double *, double *); \
    double dot_##suffix(long, const double *, const double *);                                               \
    double sum_##suffix(long, const double *);                                                               \
    void axpy_##suffix(long, double, const double *, double *);                                              \
    void tanh_##suffix(long, const double *, double *);                                                      \
    void exp_##suffix(long, const double *, double *);                                                       \
    void sigmoid_##suffix(long, const double *, double *);                                                   \
    void negate_##suffix(long, const double *, double *);                                                    \
    void softplus_##suffix(long, const double *, double *);                                                  \
    void log_##suffix(long, const double *, double *);                                                       \
    void add_##suffix(long, const double *, long, const double *, long, double *);                           \
    void subtract_##suffix(long, const double *, long, const double *, long, double *);                      \
    void multiply_##suffix(long, const double *, long, const double *, long, double *);                      \
    void divide_##suffix(long, const double *, long, const double *, long, double *);

/// A 64-byte aligned buffer of at least `count` doubles owned by the calling thread (`slot` 0 or 1),
/// reused by the thread's next request of that slot (Scratch.c).
double *ckernels_scratch(int slot, long count);

CK_DECLARE(portable)
#if defined(__x86_64__)
CK_DECLARE(avx2)
CK_DECLARE(avx512)
#endif

#endif
