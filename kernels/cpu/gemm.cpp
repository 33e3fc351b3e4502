// GEMM through oneDNN's dnnl_sgemm: it JIT-compiles AVX-512/AVX2 code for this CPU and
// shares the OpenMP runtime with our own loops (see docs/architecture.md).
#include "kernels/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <stdexcept>
#include <string>

namespace ipg::kernels::cpu {

namespace {
// Below this many multiply-adds a matrix of a batch is not worth threading on its own.
constexpr int64_t kSmallGemm = int64_t(1) << 18;
}  // namespace

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
  auto one = [&](int64_t i) {
    return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a + i * stride_a,
                      lda, b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
  };
  if (m == 0 || n == 0) return;
  dnnl_status_t st = dnnl_success;
  if (batch > 1 && m * n * k < kSmallGemm) {
    // Attention's per-head products are small and many (T x d by d x T for each image and
    // head): one thread per matrix, oneDNN running each on its thread alone (it does not
    // nest), instead of a parallel region per matrix. Each matrix's bits are then those of
    // one thread, whatever the thread count.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i) {
      const dnnl_status_t s = one(i);
      if (s != dnnl_success) {
#pragma omp critical(ipg_gemm_batched)
        st = s;
      }
    }
  } else {
    for (int64_t i = 0; i < batch && st == dnnl_success; ++i) st = one(i);
  }
  if (st != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(st));
}

}  // namespace ipg::kernels::cpu
