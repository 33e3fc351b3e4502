// Index mapping for broadcast binary ops: an output of up to kMaxDims dimensions reads
// each operand through strides that are 0 along broadcast dimensions.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

constexpr int kMaxDims = 8;

struct BroadcastIndex {
  int ndim;
  int64_t out_shape[kMaxDims];
  int64_t a_stride[kMaxDims];  // element strides of operand a, 0 where broadcast
  int64_t b_stride[kMaxDims];
};

// Offsets of operands a and b for the flat output index i.
IPG_HD void broadcast_offsets(const BroadcastIndex& bi, int64_t i, int64_t* ia, int64_t* ib) {
  int64_t oa = 0, ob = 0;
  for (int d = bi.ndim - 1; d >= 0; --d) {
    const int64_t c = i % bi.out_shape[d];
    i /= bi.out_shape[d];
    oa += c * bi.a_stride[d];
    ob += c * bi.b_stride[d];
  }
  *ia = oa;
  *ib = ob;
}

}  // namespace ipg::kernels
