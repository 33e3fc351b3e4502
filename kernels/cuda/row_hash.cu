// Per-row hash of float bits on CUDA: one warp per row, its lanes reading consecutive
// elements (coalesced) and adding their terms modulo 2^64, then a shuffle sum. The sum is
// exact in any order, so the result is the CPU twin's bits.
#include "kernels/common/row_hash_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/row_hash.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {
constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

__global__ void row_hash_kernel(const float* x, int32_t* out, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / kWarp);
  // Whole warps stride over the rows, so every lane of a warp reaches the shuffles.
  for (int64_t r = blockIdx.x * (int64_t)(blockDim.x / kWarp) + threadIdx.x / kWarp; r < rows;
       r += warps) {
    const float* p = x + r * cols;
    unsigned long long sum = 0;
    for (int64_t i = lane; i < cols; i += kWarp) sum += row_hash_term(i, __float_as_uint(p[i]));
    for (int o = kWarp / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(kFullMask, sum, o);
    if (lane == 0) {
      const uint64_t h = row_hash_finish(sum, cols);
      out[2 * r] = static_cast<int32_t>(static_cast<uint32_t>(h));
      out[2 * r + 1] = static_cast<int32_t>(static_cast<uint32_t>(h >> 32));
    }
  }
}
}  // namespace

void row_hash(const float* x, int32_t* out, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0) return;
  // kThreads / kWarp rows per block; blocks_for counts threads, so ask for rows * kWarp.
  row_hash_kernel<<<blocks_for(rows * kWarp), kThreads, 0, stream>>>(x, out, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
