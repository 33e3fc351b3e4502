// Layer normalization over a row's last axis, per-element formulas shared by
// kernels/cpu/layernorm.cpp and kernels/cuda/layernorm.cu. The row statistics (the mean and
// 1 / sqrt(var + eps), var the biased mean of squared deviations) come from each device's
// own reduction; these are the steps between.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

IPG_HD float layer_norm_rstd(float var, float eps) { return 1.f / sqrtf(var + eps); }

// The normalized x: (x - mean) * rstd.
IPG_HD float layer_norm_xhat(float x, float mean, float rstd) { return mul_rn(x - mean, rstd); }

// y = xhat * gamma + beta; gamma and beta may be absent (1 and 0).
IPG_HD float layer_norm_value(float x, float mean, float rstd, const float* gamma,
                              const float* beta, int64_t c) {
  float y = layer_norm_xhat(x, mean, rstd);
  if (gamma) y = mul_rn(y, gamma[c]);
  return beta ? y + beta[c] : y;
}

// dy scaled by gamma: the gradient of the normalized value.
IPG_HD float layer_norm_scaled_grad(float dy, const float* gamma, int64_t c) {
  return gamma ? mul_rn(dy, gamma[c]) : dy;
}

// dx = rstd * (g - (mean_g + xhat * mean_gxhat)), g = dy * gamma: the input gradient through
// the row's mean and variance, given the row means of g and of g * xhat.
IPG_HD float layer_norm_input_grad(float g, float xhat, float rstd, float mean_g,
                                   float mean_gxhat) {
  return mul_rn(rstd, g - (mean_g + mul_rn(xhat, mean_gxhat)));
}

}  // namespace ipg::kernels
