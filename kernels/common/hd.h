// Marks per-element math that both the CPU twins and the CUDA kernels compile, so the
// CPU tests exercise exactly the formulas the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define IPG_HD __host__ __device__ __forceinline__
#else
#define IPG_HD inline
#endif
