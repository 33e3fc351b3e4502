// 2-D convolution (cross-correlation, as in every deep-learning framework), NCHW/OIHW.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// x [n, c_in, h, w], weight [c_out, c_in, kh, kw] (OIHW), bias [c_out] or undefined Tensor.
// Symmetric stride and zero padding. Output [n, c_out, (h+2p-kh)/s+1, (w+2p-kw)/s+1].
// Throws ShapeError naming the shapes when they do not fit together.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride = 1,
              int padding = 0);

}  // namespace ipg::ops
