// CUDA twins of kernels/cpu/softmax_xent.h (same names and semantics, stream last).
// grad_loss is read on the device, so a backward pass needs no host sync.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols, cudaStream_t stream);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                      cudaStream_t stream);
void softmax_xent_forward(const float* logits, const int32_t* labels, float* row_stats, float* loss,
                          int64_t rows, int64_t cols, cudaStream_t stream);
void softmax_xent_backward(const float* logits, const int32_t* labels, const float* row_stats,
                           const float* grad_loss, float* dlogits, int64_t rows, int64_t cols,
                           cudaStream_t stream);

}  // namespace ipg::kernels::cuda
