// Index map of a strided view, shared by kernels/cpu/strided.cpp and
// kernels/cuda/strided.cu: element i of a row-major output of shape dims[0..rank) reads
// the input at offset + sum_d index_d(i) * strides[d]. A transpose permutes the input's
// strides, a slice starts at an offset and multiplies them by its steps (negative: a
// flip). The views ops::strided_copy accepts are one-to-one, so the gradient's scatter
// has no collisions.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

constexpr int kMaxViewRank = 8;

struct StridedView {
  int rank = 0;
  int64_t dims[kMaxViewRank] = {};     // output shape
  int64_t strides[kMaxViewRank] = {};  // input elements per step along each output axis
  int64_t offset = 0;                  // input index of output element 0
  IPG_HD int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= dims[d];
    return n;
  }
};

// The input index output element i reads.
IPG_HD int64_t strided_source(const StridedView& v, int64_t i) {
  int64_t src = v.offset;
  for (int d = v.rank - 1; d >= 0; --d) {
    const int64_t q = i / v.dims[d];
    src += (i - q * v.dims[d]) * v.strides[d];
    i = q;
  }
  return src;
}

}  // namespace ipg::kernels
