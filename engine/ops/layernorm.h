// Layer normalization over the last axis (a transformer's LayerNorm, ONNX
// LayerNormalization with axis -1).
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// y = (x - mean) / sqrt(var + eps) * gamma + beta, with mean and the biased variance var
// over each row of x's last axis; gamma and beta [cols] (either may be undefined: 1 and 0).
// Differentiable in x, gamma and beta: one op with one saved input in place of the seven
// elementwise ops and reductions it is written as, which each keep a tensor for backward.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f);

}  // namespace ipg::ops
