// Per-element batch-norm formulas shared by kernels/cpu/batchnorm.cpp and
// kernels/cuda/batchnorm.cu. Tensors are viewed as [n, c, s] (s = h*w, or 1 for [n, c]).
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

// Channel of flat element i of an [n, c, s] tensor.
IPG_HD int64_t bn_channel(int64_t i, int64_t c, int64_t s) { return (i / s) % c; }

// Flat index of the k-th element (k in [0, n*s)) of channel ch: how per-channel reductions
// walk a channel in the same order on both devices.
IPG_HD int64_t bn_channel_offset(int64_t k, int64_t ch, int64_t c, int64_t s) {
  return (k / s) * c * s + ch * s + k % s;
}

// A division, not rsqrtf: the device's rsqrtf is approximate, and the CPU twin is the
// reference the GPU must match.
IPG_HD float bn_invstd(float var, float eps) { return 1.f / sqrtf(var + eps); }

IPG_HD float bn_normalize(float x, float mean, float invstd, float gamma, float beta) {
  return (x - mean) * (invstd * gamma) + beta;
}

// PyTorch's running update; running_var tracks the unbiased variance, so the biased
// batch variance is rescaled by count / (count - 1).
IPG_HD void bn_update_running(float batch_mean, float batch_var, int64_t count, float momentum,
                              float* running_mean, float* running_var) {
  const float unbiased = batch_var * (static_cast<float>(count) / static_cast<float>(count - 1));
  *running_mean = (1.f - momentum) * *running_mean + momentum * batch_mean;
  *running_var = (1.f - momentum) * *running_var + momentum * unbiased;
}

// dL/dx in training mode, through the batch mean and variance (m = count per channel):
//   dx = gamma * invstd * (dy - sum(dy) / m - xhat * sum(dy * xhat) / m).
IPG_HD float bn_train_input_grad(float dy, float x, float mean, float invstd, float gamma,
                                 float sum_dy, float sum_dy_xhat, int64_t count) {
  const float inv_m = 1.f / static_cast<float>(count);
  const float xhat = (x - mean) * invstd;
  return gamma * invstd * (dy - sum_dy * inv_m - xhat * (sum_dy_xhat * inv_m));
}

// dL/dx in eval mode: the statistics are constants, so BN is a per-channel affine map.
IPG_HD float bn_eval_input_grad(float dy, float invstd, float gamma) { return dy * gamma * invstd; }

}  // namespace ipg::kernels
