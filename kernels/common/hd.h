// Marks per-element math that both the CPU twins and the CUDA kernels compile, so the
// CPU tests exercise exactly the formulas the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define IPG_HD __host__ __device__ __forceinline__
#else
#define IPG_HD inline
#endif

// a * b rounded on its own, never fused into a following add: nvcc contracts a * b + c
// into one FMA (one rounding) by default, the CPU build (ISO C++, -ffp-contract=off)
// never does. Where both devices must give the same bits, the product goes through this.
IPG_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
