// CUDA twins of kernels/cpu/layernorm.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y,
                        float* mean, float* rstd, int64_t rows, int64_t cols, float eps,
                        cudaStream_t stream);
void layer_norm_backward_input(const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* dy, float* dx, int64_t rows,
                               int64_t cols, bool accumulate, cudaStream_t stream);
void layer_norm_backward_params(const float* x, const float* mean, const float* rstd,
                                const float* dy, float* dgamma, float* dbeta, int64_t rows,
                                int64_t cols, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
