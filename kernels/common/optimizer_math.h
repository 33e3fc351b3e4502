// Per-element SGD and Adam updates with PyTorch's semantics, shared by
// kernels/cpu/optimizer.cpp, kernels/cuda/optimizer.cu and any later fused kernel (the
// fingerprint loop's update + clip + freeze mask calls adam_element and then decides per
// row whether to store the result). What depends only on the step number is computed once
// on the host (adam_coeffs), so the per-element code is the same on both devices and a
// caller may pass different coefficients per row.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

struct SgdCoeffs {
  float lr;
  float momentum;  // 0: plain SGD, no buffer
  float weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer is created from this step's gradient
};

// Returns the updated parameter; reads and writes *buffer only when momentum != 0.
// Dampening is 0, as in PyTorch's default.
IPG_HD float sgd_element(float p, float g, float* buffer, const SgdCoeffs& c) {
  g += c.weight_decay * p;
  if (c.momentum != 0.f) {
    const float b = c.first_step ? g : c.momentum * *buffer + g;
    *buffer = b;
    g = c.nesterov ? g + c.momentum * b : b;
  }
  return p - c.lr * g;
}

struct AdamCoeffs {
  float beta1, beta2, eps;
  float weight_decay;           // L2 added to the gradient (torch.optim.Adam), not AdamW's decay
  float step_size;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// Returns the updated parameter and advances the moments *m and *v. The operations and
// their order follow torch.optim.Adam's single-tensor path (lerp for m, then
// p - step_size * m / (sqrt(v) / sqrt(bc2) + eps)).
IPG_HD float adam_element(float p, float g, float* m, float* v, const AdamCoeffs& c) {
  g += c.weight_decay * p;
  const float mt = *m + (1.f - c.beta1) * (g - *m);
  const float vt = c.beta2 * *v + (1.f - c.beta2) * g * g;
  *m = mt;
  *v = vt;
  const float denom = sqrtf(vt) / c.bias_correction2_sqrt + c.eps;
  return p - c.step_size * mt / denom;
}

// Coefficients of step t (1 for the first step). The powers are taken in double: beta2^t
// for t in the thousands loses digits in float, and this runs once per step on the host.
inline AdamCoeffs adam_coeffs(float lr, float beta1, float beta2, float eps, float weight_decay,
                              int64_t t) {
  const double bc1 = 1.0 - pow(static_cast<double>(beta1), static_cast<double>(t));
  const double bc2 = 1.0 - pow(static_cast<double>(beta2), static_cast<double>(t));
  return AdamCoeffs{
      beta1, beta2, eps, weight_decay, static_cast<float>(lr / bc1), static_cast<float>(sqrt(bc2))};
}

}  // namespace ipg::kernels
