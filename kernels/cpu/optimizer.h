// CPU twins of kernels/cuda/optimizer.cu: one fused in-place update per parameter tensor,
// with the per-element formulas of kernels/common/optimizer_math.h.
#pragma once

#include <stdint.h>

#include "kernels/common/optimizer_math.h"

namespace ipg::kernels::cpu {

// param -= lr * (SGD direction); momentum_buffer [n] is used only when c.momentum != 0
// (may be null otherwise).
void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n,
                const SgdCoeffs& c);
// One Adam step of param [n] with moments m, v [n] (zero before the first step).
void adam_update(float* param, const float* grad, float* m, float* v, int64_t n,
                 const AdamCoeffs& c);

}  // namespace ipg::kernels::cpu
