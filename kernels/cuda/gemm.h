// CUDA twin of kernels/cpu/gemm.h (row-major, cuBLAS underneath).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          cudaStream_t stream);

// CUDA twin of kernels/cpu/gemm.h's gemm_batched (cublasSgemmStridedBatched: one launch).
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  float alpha, const float* a, int64_t lda, int64_t stride_a, const float* b,
                  int64_t ldb, int64_t stride_b, float beta, float* c, int64_t ldc,
                  int64_t stride_c, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
