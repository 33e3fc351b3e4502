// CUDA twin of kernels/cpu/row_hash.h (same name and result, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void row_hash(const float* x, int32_t* out, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
