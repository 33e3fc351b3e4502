// Row reductions with one warp per row, for kernels over [rows, cols] matrices whose rows
// are short (a softmax's classes, a LayerNorm's features): lanes stride over the columns,
// then a shuffle butterfly combines them in a fixed pattern, so a row's sum is the same bits
// on every run, without atomics.
#pragma once

#include <stdint.h>

#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// The sum of v (float or double) over the calling warp, on every lane.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Rows handled by warps, grid-stride; r is uniform across a warp, so every shuffle in the
// body sees all 32 lanes.
template <typename F>
__device__ __forceinline__ void for_each_warp_row(int64_t rows, F body) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t r = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / kWarp; r < rows;
       r += (int64_t)gridDim.x * blockDim.x / kWarp)
    body(r, lane);
}

// Blocks of kThreads for one warp per row.
inline unsigned warp_blocks(int64_t rows) { return blocks_for(rows * kWarp); }

}  // namespace ipg::kernels::cuda
