// CPU twins of kernels/cuda/clamp.cu: elementwise clamp to [lo, hi].
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// y = min(max(x, lo), hi); NaN stays NaN. In place allowed.
void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n);
// dx += dy where lo < x < hi.
void clamp_backward(const float* x, const float* dy, float* dx, float lo, float hi, int64_t n);

}  // namespace ipg::kernels::cpu
