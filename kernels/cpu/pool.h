// CPU twins of kernels/cuda/pool.cu: max, average and global average 2-D pooling over
// `planes` = n*c row-major planes, forward and backward. Backward kernels accumulate
// (dx += ...). The windowed ones add each input's contributions in row-major output
// order, as the CUDA kernels do, so both devices give the same bits.
#pragma once

#include <stdint.h>

#include "kernels/common/pool_math.h"

namespace ipg::kernels::cpu {

// y [planes, oh, ow]; argmax (same shape, index in the input plane) is written when not
// null, for the backward pass.
void max_pool2d_forward(const float* x, float* y, int32_t* argmax, int64_t planes,
                        const PoolGeometry& g);
// dx += dy routed to each window's argmax.
void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                         const PoolGeometry& g);

void avg_pool2d_forward(const float* x, float* y, int64_t planes, const PoolGeometry& g,
                        bool count_include_pad);
void avg_pool2d_backward(const float* dy, float* dx, int64_t planes, const PoolGeometry& g,
                         bool count_include_pad);

// y[p] = mean of plane p (s = h*w values), summed in double.
void global_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t s);
// dx[p, i] += dy[p] / s.
void global_avg_pool2d_backward(const float* dy, float* dx, int64_t planes, int64_t s);

}  // namespace ipg::kernels::cpu
