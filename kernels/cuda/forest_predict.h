// CUDA twin of kernels/cpu/forest_predict.h.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/forest_math.h"

namespace ipg::kernels::cuda {

// Same contract as the CPU twin; every pointer (and those in f) on the stream's device.
void forest_predict(const ForestView& f, const float* x, int64_t n, int64_t features, float* votes,
                    int32_t* labels, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
