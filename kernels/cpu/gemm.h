// CPU twin of kernels/cuda/gemm.cu: row-major single-precision GEMM,
// C = alpha * op(A) * op(B) + beta * C, op(A) is MxK, op(B) is KxN.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// `batch` independent GEMMs of the same sizes, the i-th on a + i * stride_a, b + i * stride_b
// and c + i * stride_c (attention's per-head products Q K^T and P V).
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  float alpha, const float* a, int64_t lda, int64_t stride_a, const float* b,
                  int64_t ldb, int64_t stride_b, float beta, float* c, int64_t ldc,
                  int64_t stride_c);

}  // namespace ipg::kernels::cpu
