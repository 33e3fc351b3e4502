// Index mapping for sum_to_shape: each element of a target shape (1 along reduced
// dimensions) sums its preimage in a larger source shape of the same rank.
#pragma once

#include <stdint.h>

#include "kernels/common/broadcast.h"
#include "kernels/common/hd.h"

namespace ipg::kernels {

struct ReduceIndex {
  int ndim;
  int64_t src_shape[kMaxDims];
  int64_t dst_shape[kMaxDims];  // dst_shape[d] is src_shape[d] or 1
};

// Sum of the preimage of target element j, in a fixed order (deterministic).
IPG_HD float reduce_preimage_sum(const ReduceIndex& ri, const float* x, int64_t j) {
  int64_t src_stride[kMaxDims];
  int64_t s = 1;
  for (int d = ri.ndim - 1; d >= 0; --d) {
    src_stride[d] = s;
    s *= ri.src_shape[d];
  }
  int64_t base = 0, count = 1;
  int64_t rem = j;
  for (int d = ri.ndim - 1; d >= 0; --d) {
    const int64_t c = rem % ri.dst_shape[d];
    rem /= ri.dst_shape[d];
    base += c * src_stride[d];
    if (ri.dst_shape[d] == 1) count *= ri.src_shape[d];
  }
  float acc = 0.f;
  for (int64_t k = 0; k < count; ++k) {
    int64_t off = base, r = k;
    for (int d = ri.ndim - 1; d >= 0; --d) {
      if (ri.dst_shape[d] != 1) continue;
      off += (r % ri.src_shape[d]) * src_stride[d];
      r /= ri.src_shape[d];
    }
    acc += x[off];
  }
  return acc;
}

}  // namespace ipg::kernels
