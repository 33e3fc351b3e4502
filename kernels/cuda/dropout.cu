// CUDA dropout: one thread per group of four elements (one Philox call), the same
// grouping as the CPU twin, so a seed gives the same mask on both devices.
#include "kernels/common/dropout_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

template <typename F>
__global__ void for_each_masked_kernel(int64_t n, int64_t groups, float p, float scale,
                                       uint64_t seed, uint64_t offset, F f) {
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < groups;
       g += (int64_t)gridDim.x * blockDim.x) {
    float mult[kDropoutPerCounter];
    dropout_group(seed, offset, g, p, scale, mult);
    const int64_t base = g * kDropoutPerCounter;
#pragma unroll
    for (int k = 0; k < kDropoutPerCounter; ++k)
      if (base + k < n) f(base + k, mult[k]);
  }
}

// Launch code shared by forward and backward: they differ only in their lambda.
template <typename F>
void for_each_masked(int64_t n, float p, uint64_t seed, uint64_t offset, cudaStream_t stream, F f) {
  if (n <= 0) return;
  const int64_t groups = static_cast<int64_t>(dropout_counters(n));
  for_each_masked_kernel<<<blocks_for(groups), kThreads, 0, stream>>>(
      n, groups, p, dropout_scale(p), seed, offset, f);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace

void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset,
                     cudaStream_t stream) {
  for_each_masked(n, p, seed, offset, stream,
                  [=] __device__(int64_t i, float m) { y[i] = x[i] * m; });
}

void dropout_backward(const float* dy, float* dx, int64_t n, float p, uint64_t seed,
                      uint64_t offset, cudaStream_t stream) {
  for_each_masked(n, p, seed, offset, stream,
                  [=] __device__(int64_t i, float m) { dx[i] += dy[i] * m; });
}

}  // namespace ipg::kernels::cuda
