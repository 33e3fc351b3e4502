// Softmax and cross-entropy on CUDA. Row reductions give each row one warp
// (warp_rows.cuh), so a row's max and sum are the same bits on every run. The batch mean
// is one block's fixed shared-memory tree over the rows: no atomics anywhere.
#include "kernels/common/loss_math.h"
#include "kernels/common/rowwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/softmax_xent.h"
#include "kernels/cuda/warp_rows.cuh"

namespace ipg::kernels::cuda {

namespace {

__device__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// (max, sum_c exp(z_c - max)) of one row, on every lane of the calling warp. Lanes past
// the last class contribute -inf and 0, which change nothing.
__device__ void warp_row_stats(const float* z, int64_t cols, int lane, float* max_out,
                               float* sum_out) {
  float m = -INFINITY;
  for (int64_t c = lane; c < cols; c += kWarp) m = nan_max(m, z[c]);
  m = warp_max(m);
  float s = 0.f;
  for (int64_t c = lane; c < cols; c += kWarp) s += expf(z[c] - m);
  *max_out = m;
  *sum_out = warp_sum(s);
}

__global__ void softmax_forward_kernel(const float* x, float* y, int64_t rows, int64_t cols) {
  for_each_warp_row(rows, [&](int64_t r, int lane) {
    const float* z = x + r * cols;
    float m, s;
    warp_row_stats(z, cols, lane, &m, &s);
    for (int64_t c = lane; c < cols; c += kWarp) y[r * cols + c] = softmax_value(z[c], m, s);
  });
}

__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t rows,
                                        int64_t cols) {
  for_each_warp_row(rows, [&](int64_t r, int lane) {
    const float* yr = y + r * cols;
    const float* gr = dy + r * cols;
    float dot = 0.f;
    for (int64_t c = lane; c < cols; c += kWarp) dot += gr[c] * yr[c];
    dot = warp_sum(dot);
    for (int64_t c = lane; c < cols; c += kWarp) dx[r * cols + c] += yr[c] * (gr[c] - dot);
  });
}

__global__ void row_stats_kernel(const float* logits, float* row_stats, int64_t rows,
                                 int64_t cols) {
  for_each_warp_row(rows, [&](int64_t r, int lane) {
    float m, s;
    warp_row_stats(logits + r * cols, cols, lane, &m, &s);
    if (lane == 0) {
      row_stats[2 * r] = m;
      row_stats[2 * r + 1] = s;
    }
  });
}

// One block: thread t sums rows t, t + kThreads, ...; then a fixed tree.
__global__ void xent_mean_kernel(const float* logits, const int32_t* labels, const float* row_stats,
                                 float* loss, int64_t rows, int64_t cols) {
  __shared__ float buf[kThreads];
  float acc = 0.f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int32_t y = labels[r];
    acc += index_in_range(y, cols)
               ? xent_row_loss(logits[r * cols + y], row_stats[2 * r], row_stats[2 * r + 1])
               : NAN;
  }
  buf[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss[0] = buf[0] / static_cast<float>(rows);
}

__global__ void xent_backward_kernel(const float* logits, const int32_t* labels,
                                     const float* row_stats, const float* grad_loss, float* dlogits,
                                     int64_t rows, int64_t cols) {
  const float scale = grad_loss[0] / static_cast<float>(rows);
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / cols;
    dlogits[i] += xent_grad(logits[i], i - r * cols == labels[r], row_stats[2 * r],
                            row_stats[2 * r + 1], scale);
  }
}

}  // namespace

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  softmax_forward_kernel<<<warp_blocks(rows), kThreads, 0, stream>>>(x, y, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                      cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  softmax_backward_kernel<<<warp_blocks(rows), kThreads, 0, stream>>>(y, dy, dx, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

void softmax_xent_forward(const float* logits, const int32_t* labels, float* row_stats, float* loss,
                          int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  row_stats_kernel<<<warp_blocks(rows), kThreads, 0, stream>>>(logits, row_stats, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
  xent_mean_kernel<<<1, kThreads, 0, stream>>>(logits, labels, row_stats, loss, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

void softmax_xent_backward(const float* logits, const int32_t* labels, const float* row_stats,
                           const float* grad_loss, float* dlogits, int64_t rows, int64_t cols,
                           cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  xent_backward_kernel<<<blocks_for(rows * cols), kThreads, 0, stream>>>(
      logits, labels, row_stats, grad_loss, dlogits, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
