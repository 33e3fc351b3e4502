// Clamping (and HardSigmoid, a clamped affine map) shared by kernels/cpu/clamp.cpp, kernels/cuda/clamp.cu and any fused update
// kernel that projects onto a box (fingerprint points live in [0, 1]).
#pragma once

#include "kernels/common/hd.h"

namespace ipg::kernels {

// Comparisons rather than fminf/fmaxf, which would turn a NaN into a bound and hide it.
IPG_HD float clamp_value(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// At a bound the derivative is one-sided; this engine takes the flat side there (PyTorch
// takes the steep one), so a value clipped onto the box gets no gradient through it.
IPG_HD bool clamp_passes_grad(float x, float lo, float hi) { return x > lo && x < hi; }

// ONNX HardSigmoid: max(0, min(1, alpha * x + beta)); its derivative is alpha strictly
// inside (0, 1) and 0 at and beyond the bounds (the flat side, as clamp_passes_grad).
IPG_HD float hard_sigmoid_value(float x, float alpha, float beta) {
  return clamp_value(alpha * x + beta, 0.f, 1.f);
}
IPG_HD float hard_sigmoid_grad(float x, float dy, float alpha, float beta) {
  return clamp_passes_grad(alpha * x + beta, 0.f, 1.f) ? alpha * dy : 0.f;
}

}  // namespace ipg::kernels
