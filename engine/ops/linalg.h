// Matrix products: matmul of 2-D tensors, batched matmul, and the linear layer y = x W^T + b.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// [m, k] x [k, n] -> [m, n].
Tensor matmul(const Tensor& a, const Tensor& b);
// Batched: [..., m, k] x [..., k, n] -> [..., m, n], the leading dimensions equal (not
// broadcast) and taken as one batch of independent products: attention's Q K^T and P V.
Tensor bmm(const Tensor& a, const Tensor& b);
// x [n, in], weight [out, in], bias [out] or undefined -> [n, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace ipg::ops
