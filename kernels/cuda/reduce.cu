// CUDA reductions. sum_dim gives each output one block whose threads stride over the
// reduced dimension, then a fixed shared-memory tree: deterministic run to run. Few
// outputs over long ranges are split into chunks (a second pass adds the partial sums),
// with the partials in a caller-provided workspace (sum_dim_workspace floats).
#include "kernels/cuda/check.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

constexpr int kReduceThreads = 256;

// Block-wide sum of row[k * inner] for k in [k0, k1): strided partial sums per thread,
// then a fixed shared-memory tree, so the result does not depend on timing.
__device__ float block_sum(const float* row, int64_t k0, int64_t k1, int64_t inner) {
  __shared__ float buf[kReduceThreads];
  float acc = 0.f;
  for (int64_t k = k0 + threadIdx.x; k < k1; k += blockDim.x) acc += row[k * inner];
  buf[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  return buf[0];
}

// One block per output j = o*inner + i.
__global__ void sum_dim_kernel(const float* x, float* y, int64_t dim, int64_t inner, float scale,
                               float beta) {
  const int64_t j = blockIdx.x;
  const int64_t o = j / inner, i = j % inner;
  const float total = block_sum(x + o * dim * inner + i, 0, dim, inner);
  if (threadIdx.x == 0) y[j] = (beta == 0.f ? 0.f : beta * y[j]) + scale * total;
}

// Split pass: block (j, s) sums chunk s of output j's range into partial[j * splits + s].
__global__ void sum_dim_split_kernel(const float* x, float* partial, int64_t dim, int64_t inner,
                                     int64_t chunk) {
  const int64_t j = blockIdx.x, s = blockIdx.y, splits = gridDim.y;
  const int64_t o = j / inner, i = j % inner;
  const int64_t k0 = s * chunk, k1 = k0 + chunk < dim ? k0 + chunk : dim;
  const float total = block_sum(x + o * dim * inner + i, k0, k1, inner);
  if (threadIdx.x == 0) partial[j * splits + s] = total;
}

// How many chunks each output's range is cut into: one block per output leaves the GPU
// idle when there are few outputs and long ranges (a full sum of 16M floats ran on one
// block: 24 ms, 0.1% of bandwidth, first GPU check). Splitting aims at ~1024 blocks.
int64_t split_count(int64_t n_out, int64_t dim) {
  constexpr int64_t kMinChunk = 8192, kTargetBlocks = 1024;
  if (n_out >= kTargetBlocks / 2 || dim < 2 * kMinChunk) return 1;
  int64_t splits = (dim + kMinChunk - 1) / kMinChunk;
  const int64_t cap = kTargetBlocks / n_out > 1 ? kTargetBlocks / n_out : 1;
  return splits < cap ? splits : cap;
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

int64_t sum_dim_workspace(int64_t outer, int64_t dim, int64_t inner) {
  const int64_t n_out = outer * inner, splits = split_count(n_out, dim);
  return splits > 1 ? n_out * splits : 0;
}

void sum_dim(const float* x, float* y, int64_t outer, int64_t dim, int64_t inner, float scale,
             float beta, float* workspace, cudaStream_t stream) {
  const int64_t n_out = outer * inner;
  if (n_out == 0) return;
  const int64_t splits = split_count(n_out, dim);
  if (splits > 1) {
    // Two passes, each in a fixed order: deterministic like the one-pass path.
    const int64_t chunk = (dim + splits - 1) / splits;
    sum_dim_split_kernel<<<dim3(static_cast<unsigned>(n_out), static_cast<unsigned>(splits)),
                           kReduceThreads, 0, stream>>>(x, workspace, dim, inner, chunk);
    IPG_CUDA_CHECK_LAUNCH();
    sum_dim_kernel<<<static_cast<unsigned>(n_out), kReduceThreads, 0, stream>>>(
        workspace, y, splits, 1, scale, beta);
    IPG_CUDA_CHECK_LAUNCH();
    return;
  }
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
