// CUDA twins of kernels/cpu/concat.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/common/concat_math.h"

namespace ipg::kernels::cuda {

void concat_forward(const float* x, float* y, const ConcatPart& p, cudaStream_t stream);
void concat_backward(const float* dy, float* dx, const ConcatPart& p, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
