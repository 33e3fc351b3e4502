// CUDA twins of kernels/cpu/reduce.h.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/reduce_index.h"

namespace ipg::kernels::cuda {

// Floats of workspace sum_dim needs for this shape (0: none, workspace may be null).
int64_t sum_dim_workspace(int64_t outer, int64_t dim, int64_t inner);
void sum_dim(const float* x, float* y, int64_t outer, int64_t dim, int64_t inner, float scale,
             float beta, float* workspace, cudaStream_t stream);
void sum_dim_backward(const float* dy, float* dx, int64_t outer, int64_t dim, int64_t inner,
                      float scale, cudaStream_t stream);
void sum_to_shape(const float* x, float* y, const ReduceIndex& ri, int64_t n_dst,
                  cudaStream_t stream);

}  // namespace ipg::kernels::cuda
