// Dropout mask shared by kernels/cpu/dropout.cpp and kernels/cuda/dropout.cu. One Philox
// call gives four 32-bit words, so element i takes word i % 4 of counter offset + i / 4:
// a quarter of the RNG work of one call per element, and the mask still depends only on
// (seed, offset, i).
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"
#include "kernels/common/philox.h"

namespace ipg::kernels {

constexpr int kDropoutPerCounter = 4;

// Counters a mask over n elements consumes from the generator.
IPG_HD uint64_t dropout_counters(int64_t n) {
  return static_cast<uint64_t>((n + kDropoutPerCounter - 1) / kDropoutPerCounter);
}

// Survivors are scaled by 1/(1-p); with p = 1 nothing survives and the scale is moot.
IPG_HD float dropout_scale(float p) { return p < 1.f ? 1.f / (1.f - p) : 0.f; }

// Multipliers (0 or scale) of elements 4g .. 4g+3: an element is dropped when its
// uniform draw in [0, 1) falls below p.
IPG_HD void dropout_group(uint64_t seed, uint64_t offset, int64_t g, float p, float scale,
                          float* mult) {
  const Philox4 r = philox4x32_10(seed, offset + static_cast<uint64_t>(g));
  for (int k = 0; k < kDropoutPerCounter; ++k)
    mult[k] = uint_to_unit_float(r.v[k]) < p ? 0.f : scale;
}

}  // namespace ipg::kernels
