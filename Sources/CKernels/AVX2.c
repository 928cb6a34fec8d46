// The kernels compiled for AVX2 with FMA (four-double vectors, fused multiply-adds), on x86-64 only;
// Dispatch.c calls them only when the CPU reports both features.
#include "CKernels.h"
#include "Variants.h"

#if defined(__x86_64__)
#pragma STDC FP_CONTRACT ON
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

#define CK_NAME(f) f##_avx2
#define CK_VW 4
#define CK_MR 6
#define CK_NR 8
#include "KernelBody.h"

#pragma clang attribute pop
#endif
