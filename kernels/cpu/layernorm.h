// CPU twins of kernels/cuda/layernorm.cu: layer normalization over the last axis of an
// [rows, cols] matrix (a transformer's LayerNorm). gamma and beta may be null (1 and 0).
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// y = (x - mean_r) * rstd_r * gamma + beta; each row's mean and rstd = 1 / sqrt(var + eps)
// are written for the backward pass.
void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y,
                        float* mean, float* rstd, int64_t rows, int64_t cols, float eps);
// The input gradient for dy: written to dx, or added to it when `accumulate`.
void layer_norm_backward_input(const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* dy, float* dx, int64_t rows,
                               int64_t cols, bool accumulate);
// dgamma[c] += sum_r dy * xhat, dbeta[c] += sum_r dy; either may be null.
void layer_norm_backward_params(const float* x, const float* mean, const float* rstd,
                                const float* dy, float* dgamma, float* dbeta, int64_t rows,
                                int64_t cols);

}  // namespace ipg::kernels::cpu
