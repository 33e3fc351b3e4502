// CPU twins of kernels/cuda/reduce.cu: sums over one dimension and broadcast reduction.
// x is viewed as [outer, dim, inner]; y as [outer, inner].
#pragma once

#include <stdint.h>

#include "kernels/common/reduce_index.h"

namespace ipg::kernels::cpu {

// y = beta*y + scale * sum_d x[o, d, i], accumulated in double. Summation order is fixed
// (blocks of 4096, then the block sums in order): the same bits for any thread count.
void sum_dim(const float* x, float* y, int64_t outer, int64_t dim, int64_t inner, float scale,
             float beta);
// dx[o, d, i] += scale * dy[o, i].
void sum_dim_backward(const float* dy, float* dx, int64_t outer, int64_t dim, int64_t inner,
                      float scale);
// y[j] += sum of x over the preimage of j (reduces a broadcast gradient).
void sum_to_shape(const float* x, float* y, const ReduceIndex& ri, int64_t n_dst);

}  // namespace ipg::kernels::cpu
