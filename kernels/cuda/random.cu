// Philox fills on CUDA: element i uses counter offset + i, exactly as the CPU twin.
#include "kernels/common/philox.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/random.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

__global__ void fill_uniform_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo,
                                    float hi) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = philox_uniform(seed, offset + i, lo, hi);
}

__global__ void fill_normal_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean,
                                   float stddev) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = philox_normal(seed, offset + i, mean, stddev);
}

}  // namespace

void fill_uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi,
                  cudaStream_t stream) {
  if (n <= 0) return;
  fill_uniform_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, n, seed, offset, lo, hi);
  IPG_CUDA_CHECK_LAUNCH();
}

void fill_normal(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev,
                 cudaStream_t stream) {
  if (n <= 0) return;
  fill_normal_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, n, seed, offset, mean, stddev);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
