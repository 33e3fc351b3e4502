// CPU twin of kernels/cuda/conv2d.cu: 2-D convolution forward, backward-data and
// backward-weights on oneDNN. x is NCHW [n, c_in, h, w], weight OIHW [c_out, c_in, kh, kw],
// y NCHW [n, c_out, h_out, w_out]; all contiguous float32. Backward passes add into their
// outputs (dx += ...) when `accumulate` is true and write them (dx = ...) when it is false
// (a new, uninitialized buffer from autodiff: no zero fill, and oneDNN writes a plain
// output in place instead of through a staged copy and a summing reorder). Every pass takes a caller-owned workspace of at least
// the size its *_workspace() query returns, so a steady-state loop allocates nothing here.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/conv2d_shape.h"

namespace ipg::kernels::cpu {

// y = conv(x, weight) + bias; bias [c_out] may be null.
size_t conv2d_forward_workspace(const Conv2dShape& s, bool with_bias);
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y, void* workspace, size_t workspace_bytes);

// dx (+)= conv_transpose(dy, weight).
size_t conv2d_backward_data_workspace(const Conv2dShape& s, bool accumulate);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx,
                          bool accumulate, void* workspace, size_t workspace_bytes);

// dweight (+)= correlation of x with dy; dbias [c_out] (+)= sums of dy over (n, h, w) when
// not null (one flag for both).
size_t conv2d_backward_weights_workspace(const Conv2dShape& s, bool with_bias, bool accumulate);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias, bool accumulate, void* workspace,
                             size_t workspace_bytes);

// Both backward passes of one convolution (training: dx for the layer below, dweight and
// dbias for the optimizer), the same results as backward_data then backward_weights; dy is
// put into the primitives' layout once for both instead of once each. dbias may be null.
size_t conv2d_backward_workspace(const Conv2dShape& s, bool with_bias, bool acc_dx, bool acc_w);
void conv2d_backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight,
                     float* dx, bool acc_dx, float* dweight, float* dbias, bool acc_w,
                     void* workspace, size_t workspace_bytes);

// dbias += sums of dy over (n, h, w), for a trainable bias on frozen weights. Fixed
// summation order (double, channel by channel): the same bits for any thread count.
void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias);

// The cache of oneDNN plans (one per geometry, pass and bias; least recently used given
// back past 1024): how many it holds, and a smaller bound for tests.
size_t conv2d_cached_plans();
void set_conv2d_plan_capacity(size_t plans_held);

}  // namespace ipg::kernels::cpu
