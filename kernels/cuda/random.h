// CUDA twins of kernels/cpu/random.h.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void fill_uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi,
                  cudaStream_t stream);
void fill_normal(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev,
                 cudaStream_t stream);

}  // namespace ipg::kernels::cuda
