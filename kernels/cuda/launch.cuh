// The one launch helper for per-element CUDA kernels: a grid-stride loop over n items
// calling a device lambda. Kernels that differ only in their per-element math share it.
#pragma once

#include <stdint.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

template <typename F>
__global__ void for_each_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    f(i);
}

// Runs f(i) for i in [0, n) on `stream`; checks the launch.
template <typename F>
void launch(int64_t n, cudaStream_t stream, F f) {
  if (n <= 0) return;
  for_each_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, f);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
