// Differentiable views: the same storage under another shape.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// Same elements, new shape (one dimension may be -1: inferred). Shares storage.
Tensor reshape(const Tensor& x, Shape shape);
// [n, ...] -> [n, prod(...)].
Tensor flatten(const Tensor& x);

}  // namespace ipg::ops
