// Elementwise clamp, e.g. projecting candidate images back onto [0, 1].
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// min(max(x, lo), hi) elementwise (NaN stays NaN); lo <= hi, else std::invalid_argument.
// The gradient passes where lo < x < hi and is 0 elsewhere, the bounds included.
Tensor clamp(const Tensor& x, float lo, float hi);

}  // namespace ipg::ops
