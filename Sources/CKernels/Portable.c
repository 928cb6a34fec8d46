// The portable kernels: plain C over two-double vectors (SSE2 on x86-64, NEON on arm64), without fused
// multiply-adds, so they give the same bits on every machine.
#include "CKernels.h"
#include "Variants.h"

#pragma STDC FP_CONTRACT OFF

#define CK_NAME(f) f##_portable
#define CK_VW 2
#define CK_MR 4
#define CK_NR 4
#include "KernelBody.h"
