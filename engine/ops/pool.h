// 2-D pooling and zero padding of NCHW float tensors, differentiable with respect to x.
// Output sizes follow PyTorch's floor mode, (h + 2*padding - kernel) / stride + 1, or with
// ceil_mode its ceiling (kernels/common/pool_math.h pool_out_size: GoogLeNet, SqueezeNet).
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// Padding acts as -inf and must be at most kernel / 2. The gradient goes to each window's
// maximum (ties: the first in row-major order), through indices kept from the forward.
Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding = 0,
                  bool ceil_mode = false);
// count_include_pad: divide by the window size including padding (PyTorch's default),
// else by the number of real pixels in the window. A ceil-mode window's overhang past the
// padding is never counted (PyTorch's rule).
Tensor avg_pool2d(const Tensor& x, int kernel, int stride, int padding = 0,
                  bool count_include_pad = true, bool ceil_mode = false);
// [n, c, h, w] -> [n, c]: the mean of each plane.
Tensor global_avg_pool2d(const Tensor& x);
// Keras ZeroPadding2D: [n, c, h, w] -> [n, c, top + h + bottom, left + w + right], zeros in
// the border (all amounts >= 0).
Tensor zero_pad2d(const Tensor& x, int top, int bottom, int left, int right);

}  // namespace ipg::ops
