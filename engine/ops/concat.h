// Concatenation along one axis (ONNX Concat; DenseNet/Inception-style channel concat).
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace ipg::ops {

// xs (at least one; float32, one device, the same rank, equal sizes except along `axis`)
// joined along `axis` (negative: counted from the end). Differentiable in every input.
// Throws ShapeError naming the shapes when they do not fit.
Tensor concat(const std::vector<Tensor>& xs, int axis = 1);

}  // namespace ipg::ops
