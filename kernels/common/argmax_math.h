// Row argmax shared by the CPU twin and the CUDA kernel (one thread per row: class
// counts are small).
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

IPG_HD int32_t argmax_row(const float* row, int64_t cols) {
  int32_t best = 0;
  float best_v = row[0];
  for (int64_t c = 1; c < cols; ++c) {
    // `!(best_v >= v)` would let NaN win; compare so that only a strictly larger
    // number replaces the current best, and a NaN best is replaced by any number.
    const float v = row[c];
    if (v > best_v || (best_v != best_v && v == v)) {
      best_v = v;
      best = static_cast<int32_t>(c);
    }
  }
  return best;
}

}  // namespace ipg::kernels
