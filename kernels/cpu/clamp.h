// CPU twins of kernels/cuda/clamp.cu: elementwise clamp to [lo, hi], and
// HardSigmoid (an affine map clamped to [0, 1]).
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// y = min(max(x, lo), hi); NaN stays NaN. In place allowed.
void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n);
// dx += dy where lo < x < hi.
void clamp_backward(const float* x, const float* dy, float* dx, float lo, float hi, int64_t n);

// y = max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid). In place allowed.
void hard_sigmoid_forward(const float* x, float* y, float alpha, float beta, int64_t n);
// dx += alpha * dy where 0 < alpha * x + beta < 1.
void hard_sigmoid_backward(const float* x, const float* dy, float* dx, float alpha, float beta,
                           int64_t n);

}  // namespace ipg::kernels::cpu
