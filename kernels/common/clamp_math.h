// Clamping shared by kernels/cpu/clamp.cpp, kernels/cuda/clamp.cu and any fused update
// kernel that projects onto a box (fingerprint points live in [0, 1]).
#pragma once

#include "kernels/common/hd.h"

namespace ipg::kernels {

// Comparisons rather than fminf/fmaxf, which would turn a NaN into a bound and hide it.
IPG_HD float clamp_value(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// At a bound the derivative is one-sided; this engine takes the flat side there (PyTorch
// takes the steep one), so a value clipped onto the box gets no gradient through it.
IPG_HD bool clamp_passes_grad(float x, float lo, float hi) { return x > lo && x < hi; }

}  // namespace ipg::kernels
