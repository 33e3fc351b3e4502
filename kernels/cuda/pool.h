// CUDA twins of kernels/cpu/pool.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/pool_math.h"

namespace ipg::kernels::cuda {

void max_pool2d_forward(const float* x, float* y, int32_t* argmax, int64_t planes,
                        const PoolGeometry& g, cudaStream_t stream);
void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                         const PoolGeometry& g, cudaStream_t stream);
void avg_pool2d_forward(const float* x, float* y, int64_t planes, const PoolGeometry& g,
                        bool count_include_pad, cudaStream_t stream);
void avg_pool2d_backward(const float* dy, float* dx, int64_t planes, const PoolGeometry& g,
                         bool count_include_pad, cudaStream_t stream);
void global_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t s,
                               cudaStream_t stream);
void global_avg_pool2d_backward(const float* dy, float* dx, int64_t planes, int64_t s,
                                cudaStream_t stream);

}  // namespace ipg::kernels::cuda
