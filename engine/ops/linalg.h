// Matrix products: matmul of 2-D tensors and the linear layer y = x W^T + b.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// [m, k] x [k, n] -> [m, n].
Tensor matmul(const Tensor& a, const Tensor& b);
// x [n, in], weight [out, in], bias [out] or undefined -> [n, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace ipg::ops
