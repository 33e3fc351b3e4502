// CUDA twins of kernels/cpu/clamp.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n, cudaStream_t stream);
void clamp_backward(const float* x, const float* dy, float* dx, float lo, float hi, int64_t n,
                    cudaStream_t stream);
void hard_sigmoid_forward(const float* x, float* y, float alpha, float beta, int64_t n,
                          cudaStream_t stream);
void hard_sigmoid_backward(const float* x, const float* dy, float* dx, float alpha, float beta,
                           int64_t n, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
