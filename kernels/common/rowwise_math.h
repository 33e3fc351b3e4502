// Per-row selection math shared by kernels/cpu/{rowwise,softmax_xent}.cpp and their CUDA
// twins: index checks and the row maximum over the classes not excluded.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

IPG_HD bool index_in_range(int32_t i, int64_t bound) { return i >= 0 && i < bound; }

// Whether class c is one of the m entries of an exclude row; entries outside [0, cols),
// such as the -1 padding, never match, so they need no check of their own.
IPG_HD bool is_excluded(const int32_t* exclude, int64_t m, int64_t c) {
  for (int64_t j = 0; j < m; ++j)
    if (exclude[j] == c) return true;
  return false;
}

// Index of the first maximum among the classes not excluded, or -1 when every class is.
// A NaN wins as soon as it is met and is never replaced, so a diverged row yields NaN
// (as torch.max does) instead of silently reporting the largest finite logit.
IPG_HD int32_t max_excluding_row(const float* row, int64_t cols, const int32_t* exclude,
                                 int64_t m) {
  int32_t best = -1;
  float best_v = 0.f;
  for (int64_t c = 0; c < cols; ++c) {
    if (is_excluded(exclude, m, c)) continue;
    const float v = row[c];
    if (best < 0 || v > best_v || (v != v && best_v == best_v)) {
      best = static_cast<int32_t>(c);
      best_v = v;
    }
  }
  return best;
}

}  // namespace ipg::kernels
