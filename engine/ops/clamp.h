// Elementwise clamp (projecting candidate images back onto [0, 1]; ONNX Clip and Relu6)
// and HardSigmoid, an affine map clamped to [0, 1].
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// min(max(x, lo), hi) elementwise (NaN stays NaN); lo <= hi, else std::invalid_argument.
// The gradient passes where lo < x < hi and is 0 elsewhere, the bounds included.
Tensor clamp(const Tensor& x, float lo, float hi);
// ONNX Clip / Relu6 (min 0, max 6).
inline Tensor relu6(const Tensor& x) { return clamp(x, 0.f, 6.f); }

// ONNX HardSigmoid: max(0, min(1, alpha * x + beta)) (ONNX defaults alpha 0.2, beta 0.5;
// PyTorch's hardsigmoid exports alpha 1/6, beta 0.5). Gradient alpha where the affine
// value lies strictly inside (0, 1), 0 elsewhere.
Tensor hard_sigmoid(const Tensor& x, float alpha = 0.2f, float beta = 0.5f);

}  // namespace ipg::ops
