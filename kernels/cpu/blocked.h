// Kernels on activations in the layout a frozen network keeps between its layers
// (engine/frozen_graph.h): a c-channel map is stored channel-blocked, [n, c/16, h, w, 16]
// (oneDNN's nChw16c, what its direct convolutions read and write), when c is a multiple
// of 16, and plain NCHW otherwise (block 1). Every kernel takes the block explicitly, so
// block 1 is plain NCHW. Outputs are overwritten, not accumulated: each buffer of a
// frozen graph has one writer. Parallel over fixed chunks, each element computed by one
// thread in one fixed order, so any thread count gives the same bits.
#pragma once

#include <stdint.h>

#include "kernels/common/act_shape.h"
#include "kernels/common/activation_math.h"
#include "kernels/common/pool_math.h"

namespace ipg::kernels::cpu {

// 16 when c is a multiple of 16, else 1.
int64_t channel_block(int64_t channels);

// An activation: n maps of c channels, h x w, in channel blocks of `block`.
using kernels::ActShape;

// out = (grads[0] + ... + grads[count-1]) * (0 < mask[i] < mask_max when mask is not
// null), for n elements of one shared layout: the gradient reaching a ReLU output (mask:
// that output) from all its consumers, through the ReLU; mask_max bounds a ReLU6 (6;
// infinity for a ReLU). count >= 1.
void sum_relu_mask(const float* const* grads, int count, const float* mask, float mask_max,
                   float* out, int64_t n);

// y = x * scale[c] + shift[c], then max(0, .) when relu: eval-mode batch norm (and the
// input normalization) on its own. x == y allowed.
void channel_affine(const ActShape& s, const float* x, const float* scale, const float* shift,
                    bool relu, float* y);
// dx = dy * scale[c], where y > 0 when relu (y: the forward output).
void channel_affine_backward(const ActShape& s, const float* y, const float* dy, const float* scale,
                             bool relu, float* dx);

// y [n, c] (plain) = the mean of each map.
void global_avg_pool(const ActShape& s, const float* x, float* y);
// dx = dy[n, c] / (h * w) spread over each map.
void global_avg_pool_backward(const ActShape& s, const float* dy, float* dx);

// Max pooling over each map, padding as -inf (g: the geometry of one map). argmax (one
// per output: the winner's index in its map) is written and read for plain maps only
// (block 1; may be null for blocked ones, whose winners the backward pass finds again).
void max_pool(const ActShape& s, const PoolGeometry& g, const float* x, float* y, int32_t* argmax);
// dx = dy routed to each window's winner (the first pixel, row-major, holding the
// maximum: the pixel pool_math's scan picks), summed where windows overlap.
void max_pool_backward(const ActShape& s, const PoolGeometry& g, const float* x, const float* y,
                       const int32_t* argmax, const float* dy, float* dx);

// Average pooling over each map (g: one map's geometry; include_pad: the divisor counts
// the padding, as pool_math's avg_pool_divisor). Each output sums its window row-major
// from zero, as pool.h's avg_pool2d_forward: the same bits in either layout.
void avg_pool(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* x, float* y);
// dx = each output's dy / divisor spread over its window, summed where windows overlap
// (outputs in row-major order; dx written, not added to).
void avg_pool_backward(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* dy,
                       float* dx);

// Between the two layouts of s: blocked [n, c/b, h, w, b] -> plain [n, c, h, w] and back.
void unblock(const ActShape& s, const float* x, float* y);
void reblock(const ActShape& s, const float* x, float* y);

// y = f(x) element-wise, n elements of any layout (f(0) need not be 0: a block divides
// the channels, so no lane is padding). A Unary f runs elementwise.h's own kernel.
void activation(const Activation& f, const float* x, float* y, int64_t n);
// dx = dy * f'(x) (written, not added to); y = f(x), the forward output.
void activation_backward(const Activation& f, const float* x, const float* y, const float* dy,
                         float* dx, int64_t n);

// Squeeze-and-excitation's rescaling: y = x * gate[n, c] (gate plain [n, c]) over each map.
void channel_scale(const ActShape& s, const float* x, const float* gate, float* y);
// dx = dy * gate[n, c]; dgate[n, c] = the sum over the map of dy * x (both written).
void channel_scale_backward(const ActShape& s, const float* x, const float* gate, const float* dy,
                            float* dx, float* dgate);

// Rows of a linear layer's output: y[i, j] += bias[j] (bias may be null), then ReLU.
void bias_relu_rows(float* y, const float* bias, int64_t rows, int64_t cols, bool relu);

}  // namespace ipg::kernels::cpu
