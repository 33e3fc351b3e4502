// CUDA twin of kernels/cpu/argmax.h.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
