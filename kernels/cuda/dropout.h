// CUDA twins of kernels/cpu/dropout.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset,
                     cudaStream_t stream);
void dropout_backward(const float* dy, float* dx, int64_t n, float p, uint64_t seed,
                      uint64_t offset, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
