// CUDA twins of kernels/cpu/blocked.h: the kernels between the layers of a frozen network
// on CUDA (engine/frozen_graph_cuda.h), same names and semantics, stream last. Maps are
// plain NCHW there (cuDNN's layout), so the pooling kernels take block-1 shapes only
// (std::invalid_argument otherwise); the element-wise ones take any block, as their twins
// do. Pointers are device pointers unless said otherwise. Outputs are overwritten, not
// accumulated: each buffer of a frozen graph has one writer. Work is issued to `stream`
// only: no allocation, no host synchronization.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/act_shape.h"
#include "kernels/common/activation_math.h"
#include "kernels/common/pool_math.h"

namespace ipg::kernels::cuda {

// Gradient parts one launch of sum_relu_mask sums; more are summed in several launches
// (in the same order, so the bits do not change).
constexpr int kMaxGradParts = 8;

// out = (grads[0] + ... + grads[count-1]) * (0 < mask[i] < mask_max when mask is not
// null), n elements, added left to right as the CPU twin adds them. grads: a host array
// of count >= 1 device pointers (passed by value to the kernel: the array may go after
// the call).
void sum_relu_mask(const float* const* grads, int count, const float* mask, float mask_max,
                   float* out, int64_t n, cudaStream_t stream);

// y = x * scale[c] + shift[c], then max(0, .) when relu. x == y allowed.
void channel_affine(const ActShape& s, const float* x, const float* scale, const float* shift,
                    bool relu, float* y, cudaStream_t stream);
// dx = dy * scale[c], where y > 0 when relu (y: the forward output).
void channel_affine_backward(const ActShape& s, const float* y, const float* dy, const float* scale,
                             bool relu, float* dx, cudaStream_t stream);

// y [n, c] = the mean of each map (kernels/cuda/pool.h's global_avg_pool2d_forward).
void global_avg_pool(const ActShape& s, const float* x, float* y, cudaStream_t stream);
// dx = dy[n, c] / (h * w) spread over each map.
void global_avg_pool_backward(const ActShape& s, const float* dy, float* dx, cudaStream_t stream);

// Max pooling over each map, padding as -inf; argmax (one per output, the winner's index
// in its map) is written for the backward pass (pool.h's max_pool2d_forward).
void max_pool(const ActShape& s, const PoolGeometry& g, const float* x, float* y, int32_t* argmax,
              cudaStream_t stream);
// dx = dy routed to each window's winner, summed where windows overlap (added in
// row-major output order, as the CPU twin adds them). x and y are not read: the winners
// are argmax's (kept for the twin's signature).
void max_pool_backward(const ActShape& s, const PoolGeometry& g, const float* x, const float* y,
                       const int32_t* argmax, const float* dy, float* dx, cudaStream_t stream);

// Average pooling over each map (pool.h's avg_pool2d_forward: the CPU twin's bits).
void avg_pool(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* x, float* y,
              cudaStream_t stream);
// dx = each output's dy / divisor spread over its window (written, not added to: zeroed,
// then pool.h's gather, which sums the covering windows in the CPU twin's order).
void avg_pool_backward(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* dy,
                       float* dx, cudaStream_t stream);

// y = f(x) element-wise, any layout; a Unary f runs elementwise.h's own kernel.
void activation(const Activation& f, const float* x, float* y, int64_t n, cudaStream_t stream);
// dx = dy * f'(x) (written, not added to); y = f(x), the forward output.
void activation_backward(const Activation& f, const float* x, const float* y, const float* dy,
                         float* dx, int64_t n, cudaStream_t stream);

// Squeeze-and-excitation's rescaling: y = x * gate[n, c] (gate [n, c]) over each map.
void channel_scale(const ActShape& s, const float* x, const float* gate, float* y,
                   cudaStream_t stream);
// dx = dy * gate[n, c]; dgate[n, c] = the sum over the map of dy * x, one warp per map,
// in double (the CPU twin sums each map's products in order: equal up to the last bit).
// Plain maps only.
void channel_scale_backward(const ActShape& s, const float* x, const float* gate, const float* dy,
                            float* dx, float* dgate, cudaStream_t stream);

// Rows of a linear layer's output: y[i, j] += bias[j] (bias may be null), then ReLU.
void bias_relu_rows(float* y, const float* bias, int64_t rows, int64_t cols, bool relu,
                    cudaStream_t stream);

}  // namespace ipg::kernels::cuda
