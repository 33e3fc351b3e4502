// Differentiable sums and means: over all elements (a one-element tensor of shape [])
// or over one dimension (removed, or kept with size 1 when keepdim).
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor sum(const Tensor& x, int dim, bool keepdim = false);
Tensor mean(const Tensor& x, int dim, bool keepdim = false);

}  // namespace ipg::ops
