// The kernels compiled for AVX-512F (eight-double vectors, fused multiply-adds), on x86-64 only;
// Dispatch.c calls them only when the CPU reports AVX-512F.
#include "CKernels.h"
#include "Variants.h"

#if defined(__x86_64__)
#pragma STDC FP_CONTRACT ON
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)

#define CK_NAME(f) f##_avx512
#define CK_VW 8
#define CK_MR 12
#define CK_NR 16
#include "KernelBody.h"

#pragma clang attribute pop
#endif
