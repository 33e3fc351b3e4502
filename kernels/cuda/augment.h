// CUDA twin of kernels/cpu/augment.h.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void random_crop_flip(const float* x, float* y, int64_t n, int64_t c, int h, int w, int pad,
                      bool flip, uint64_t seed, uint64_t first, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
