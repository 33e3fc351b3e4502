// CUDA twins of kernels/cpu/strided.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/common/strided_math.h"

namespace ipg::kernels::cuda {

void strided_gather(const float* x, float* y, const StridedView& v, cudaStream_t stream);
void strided_scatter_add(const float* dy, float* dx, const StridedView& v, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
