// Clamping (of a value, of an affine map, and HardSigmoid, an affine map clamped to
// [0, 1]), shared by kernels/cpu/clamp.cpp, kernels/cuda/clamp.cu, the frozen networks'
// activation steps (activation_math.h) and any fused update kernel that projects onto a
// box (fingerprint points live in [0, 1]).
#pragma once

#include "kernels/common/hd.h"

namespace ipg::kernels {

// Comparisons rather than fminf/fmaxf, which would turn a NaN into a bound and hide it.
IPG_HD float clamp_value(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// At a bound the derivative is one-sided; this engine takes the flat side there (PyTorch
// takes the steep one), so a value clipped onto the box gets no gradient through it.
IPG_HD bool clamp_passes_grad(float x, float lo, float hi) { return x > lo && x < hi; }

// clamp(a x + b, lo, hi), the product rounded on its own (mul_rn: both devices' bits), and
// its gradient: a * dy strictly inside (lo, hi), 0 at and beyond the bounds (the flat
// side, as clamp_passes_grad).
IPG_HD float clamp_affine_value(float x, float a, float b, float lo, float hi) {
  return clamp_value(mul_rn(a, x) + b, lo, hi);
}
IPG_HD float clamp_affine_grad(float x, float dy, float a, float b, float lo, float hi) {
  return clamp_passes_grad(mul_rn(a, x) + b, lo, hi) ? a * dy : 0.f;
}

// ONNX HardSigmoid: max(0, min(1, alpha * x + beta)).
IPG_HD float hard_sigmoid_value(float x, float alpha, float beta) {
  return clamp_affine_value(x, alpha, beta, 0.f, 1.f);
}
IPG_HD float hard_sigmoid_grad(float x, float dy, float alpha, float beta) {
  return clamp_affine_grad(x, dy, alpha, beta, 0.f, 1.f);
}

}  // namespace ipg::kernels
