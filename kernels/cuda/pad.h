// CUDA twins of kernels/cpu/pad.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/pool_math.h"

namespace ipg::kernels::cuda {

void zero_pad2d_forward(const float* x, float* y, int64_t planes, const PadGeometry& g,
                        cudaStream_t stream);
void zero_pad2d_backward(const float* dy, float* dx, int64_t planes, const PadGeometry& g,
                         cudaStream_t stream);

}  // namespace ipg::kernels::cuda
