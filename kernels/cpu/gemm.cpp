// GEMM through oneDNN's dnnl_sgemm: it JIT-compiles AVX-512/AVX2 code for this CPU and
// shares the OpenMP runtime with our own loops (see docs/architecture.md).
#include "kernels/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <stdexcept>
#include <string>

namespace ipg::kernels::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                      lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(st));
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  float alpha, const float* a, int64_t lda, int64_t stride_a, const float* b,
                  int64_t ldb, int64_t stride_b, float beta, float* c, int64_t ldc,
                  int64_t stride_c) {
  // One sgemm per matrix, in order: each is threaded by oneDNN itself, and the bits do not
  // depend on how the batch would be split among threads.
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
}

}  // namespace ipg::kernels::cpu
