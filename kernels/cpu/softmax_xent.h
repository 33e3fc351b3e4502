// CPU twins of kernels/cuda/softmax_xent.cu: row softmax and the fused softmax
// cross-entropy over [rows, cols] logits. Backward kernels accumulate (dx += ...).
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// y[r, :] = softmax(x[r, :]).
void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols);
// dx[r, c] += y[r, c] * (dy[r, c] - sum_k dy[r, k] y[r, k]), y being the forward output.
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols);

// loss[0] = mean_r (logsumexp(z[r, :]) - z[r, labels[r]]), summed in row order.
// row_stats [rows, 2] receives each row's (max, sum_c exp(z - max)) for the backward pass.
// A label outside [0, cols) makes its row, and so the loss, NaN (callers validate first).
void softmax_xent_forward(const float* logits, const int32_t* labels, float* row_stats, float* loss,
                          int64_t rows, int64_t cols);
// dlogits += (softmax - onehot) * grad_loss[0] / rows.
void softmax_xent_backward(const float* logits, const int32_t* labels, const float* row_stats,
                           const float* grad_loss, float* dlogits, int64_t rows, int64_t cols);

}  // namespace ipg::kernels::cpu
