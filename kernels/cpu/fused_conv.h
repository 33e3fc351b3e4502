// A convolution of a frozen network (engine/frozen_graph.h): weights fixed when it is
// made, activations in the layouts of kernels/cpu/blocked.h (channel-blocked when the
// channel count is a multiple of 16), and its epilogue fused into oneDNN's kernel:
//   forward        y = relu?(conv(x, w) + bias + r?)   (r: a residual shaped like y;
//                                                       the ReLU capped at relu_max)
//   backward_data  dx = conv_transpose(dz, w)          (dz: gradient before the ReLU)
// Between layers nothing is reordered: oneDNN's direct kernels read and write nChw16c
// themselves (the plain-layout twin, conv2d.cpp, reorders every operand on every call).
// The weights are reordered into each primitive's layout once, here.
#pragma once

#include <stddef.h>

#include <limits>
#include <memory>

#include "kernels/common/conv2d_shape.h"

namespace ipg::kernels::cpu {

class FusedConv {
 public:
  // weight [c_out, c_in / groups, kh, kw] (OIHW per group) and bias [c_out] (null: none)
  // are copied. s: one stride and one padding for both axes (s.uniform()); any dilation
  // and groups. relu_max: the ReLU's upper bound (ReLU6: 6), a clip in oneDNN's epilogue.
  FusedConv(const Conv2dShape& s, const float* weight, const float* bias, bool residual, bool relu,
            float relu_max = std::numeric_limits<float>::infinity());
  ~FusedConv();
  FusedConv(const FusedConv&) = delete;
  FusedConv& operator=(const FusedConv&) = delete;

  const Conv2dShape& shape() const;
  // The workspace forward() and backward_data() need (the larger of the two).
  size_t workspace_bytes() const;
  // x in channel_block(c_in) layout, y and residual in channel_block(c_out) layout;
  // residual must be null exactly when the conv was made without one. y is overwritten.
  void forward(const float* x, const float* residual, float* y, void* workspace,
               size_t workspace_bytes) const;
  // dz and dx in the layouts of y and x; dx is overwritten.
  void backward_data(const float* dz, float* dx, void* workspace, size_t workspace_bytes) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipg::kernels::cpu
