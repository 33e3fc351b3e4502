// Index map of concatenation, shared by kernels/cpu/concat.cpp and kernels/cuda/concat.cu.
// A tensor concatenated along an axis is, per slice of the dimensions before the axis
// ("outer"), one contiguous run of its elements placed at an offset in the output's run.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

struct ConcatPart {
  int64_t outer = 0;   // product of the dimensions before the axis
  int64_t x_row = 0;   // elements of the part per outer slice (its axis size * inner)
  int64_t y_row = 0;   // elements of the output per outer slice
  int64_t offset = 0;  // where the part's run starts in each output slice
  IPG_HD int64_t numel() const { return outer * x_row; }
};

// The output index of the part's element i.
IPG_HD int64_t concat_out_index(const ConcatPart& p, int64_t i) {
  const int64_t o = i / p.x_row;
  return o * p.y_row + p.offset + (i - o * p.x_row);
}

}  // namespace ipg::kernels
