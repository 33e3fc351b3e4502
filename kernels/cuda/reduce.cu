// CUDA reductions. sum_dim gives each output one block whose threads stride over the
// reduced dimension, then a fixed shared-memory tree: deterministic run to run.
#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

constexpr int kReduceThreads = 256;

__global__ void sum_dim_kernel(const float* x, float* y, int64_t dim, int64_t inner, float scale,
                               float beta) {
  __shared__ float buf[kReduceThreads];
  const int64_t j = blockIdx.x;  // output index o*inner + i
  const int64_t o = j / inner, i = j % inner;
  const float* row = x + o * dim * inner + i;
  float acc = 0.f;
  for (int64_t k = threadIdx.x; k < dim; k += blockDim.x) acc += row[k * inner];
  buf[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) y[j] = (beta == 0.f ? 0.f : beta * y[j]) + scale * buf[0];
}

__global__ void sum_dim_backward_kernel(const float* dy, float* dx, int64_t n, int64_t dim,
                                        int64_t inner, float scale) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
       k += (int64_t)gridDim.x * blockDim.x) {
    const int64_t o = k / (dim * inner), i = k % inner;
    dx[k] += scale * dy[o * inner + i];
  }
}

__global__ void sum_to_shape_kernel(const float* x, float* y, ReduceIndex ri, int64_t n_dst) {
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n_dst;
       j += (int64_t)gridDim.x * blockDim.x)
    y[j] += reduce_preimage_sum(ri, x, j);
}

}  // namespace

void sum_dim(const float* x, float* y, int64_t outer, int64_t dim, int64_t inner, float scale,
             float beta, cudaStream_t stream) {
  const int64_t n_out = outer * inner;
  if (n_out == 0) return;
  // Outputs go in blockIdx.x, which allows up to 2^31-1 blocks.
  sum_dim_kernel<<<static_cast<unsigned>(n_out), kReduceThreads, 0, stream>>>(x, y, dim, inner,
                                                                              scale, beta);
  IPG_CUDA_CHECK_LAUNCH();
}

void sum_dim_backward(const float* dy, float* dx, int64_t outer, int64_t dim, int64_t inner,
                      float scale, cudaStream_t stream) {
  const int64_t n = outer * dim * inner;
  if (n == 0) return;
  sum_dim_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dy, dx, n, dim, inner, scale);
  IPG_CUDA_CHECK_LAUNCH();
}

void sum_to_shape(const float* x, float* y, const ReduceIndex& ri, int64_t n_dst,
                  cudaStream_t stream) {
  if (n_dst == 0) return;
  sum_to_shape_kernel<<<blocks_for(n_dst), kThreads, 0, stream>>>(x, y, ri, n_dst);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
