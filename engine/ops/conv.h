// 2-D convolution (cross-correlation, as in every deep-learning framework), NCHW/OIHW.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// ONNX Conv's geometry. Output rows: (h + pad_top + pad_bottom - dilation_h*(kh-1) - 1)
// / stride_h + 1 (floor), columns likewise. groups splits the channels: the weight is
// [c_out, c_in / groups, kh, kw], output channel o reads input channels of group
// o / (c_out / groups); depthwise is groups == c_in.
struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
};

// x [n, c_in, h, w], weight [c_out, c_in / groups, kh, kw], bias [c_out] or undefined.
// Throws ShapeError naming the shapes and the geometry when they do not fit together.
// Differentiable in x, weight and bias. Asymmetric padding runs as a zero_pad2d of the
// excess followed by a symmetric convolution (both in the trace).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);

// Symmetric stride and zero padding. Output [n, c_out, (h+2p-kh)/s+1, (w+2p-kw)/s+1].
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride = 1,
              int padding = 0);

}  // namespace ipg::ops
