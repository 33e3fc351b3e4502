// CUDA batch norm. Statistics and parameter gradients reduce each channel in one block:
// every thread strides over the channel in a fixed order, then a fixed warp-shuffle tree
// combines them, in double like the CPU twin. No atomics, so the result does not depend
// on scheduling.
#include "kernels/common/batchnorm_math.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

constexpr int kReduceThreads = 256;
constexpr int kWarps = kReduceThreads / 32;

// Sum of v over the block, returned to every thread. Every thread adds the warp totals
// in the same order, so all of them (and every run) see the same value.
__device__ double block_sum(double v) {
  __shared__ double warp_totals[kWarps];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if ((threadIdx.x & 31) == 0) warp_totals[threadIdx.x >> 5] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kWarps; ++w) total += warp_totals[w];
  __syncthreads();  // warp_totals is reused by the next call
  return total;
}

__global__ void batch_norm_stats_kernel(const float* x, float* mean, float* var, int64_t n,
                                        int64_t c, int64_t s) {
  const int64_t ch = blockIdx.x, count = n * s;
  double acc = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += kReduceThreads)
    acc += x[bn_channel_offset(k, ch, c, s)];
  const double mu = block_sum(acc) / static_cast<double>(count);
  // Second pass over deviations, as on the CPU: E[x^2] - E[x]^2 cancels badly.
  acc = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += kReduceThreads) {
    const double d = x[bn_channel_offset(k, ch, c, s)] - mu;
    acc += d * d;
  }
  const double sq = block_sum(acc);
  if (threadIdx.x == 0) {
    mean[ch] = static_cast<float>(mu);
    var[ch] = static_cast<float>(sq / static_cast<double>(count));
  }
}

__global__ void batch_norm_backward_reduce_kernel(const float* x, const float* dy,
                                                  const float* mean, const float* var,
                                                  float* sum_dy, float* sum_dy_xhat, int64_t n,
                                                  int64_t c, int64_t s, float eps) {
  const int64_t ch = blockIdx.x, count = n * s;
  const bool want_xhat = sum_dy_xhat != nullptr;
  const double m = mean[ch];
  double acc_dy = 0.0, acc_xhat = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += kReduceThreads) {
    const int64_t i = bn_channel_offset(k, ch, c, s);
    acc_dy += dy[i];
    if (want_xhat) acc_xhat += static_cast<double>(dy[i]) * (x[i] - m);
  }
  acc_dy = block_sum(acc_dy);
  if (want_xhat) acc_xhat = block_sum(acc_xhat);
  if (threadIdx.x == 0) {
    if (sum_dy) sum_dy[ch] = static_cast<float>(acc_dy);
    if (want_xhat) sum_dy_xhat[ch] = static_cast<float>(acc_xhat * bn_invstd(var[ch], eps));
  }
}

}  // namespace

void batch_norm_stats(const float* x, float* mean, float* var, int64_t n, int64_t c, int64_t s,
                      cudaStream_t stream) {
  if (c <= 0) return;
  batch_norm_stats_kernel<<<static_cast<unsigned>(c), kReduceThreads, 0, stream>>>(x, mean, var, n,
                                                                                   c, s);
  IPG_CUDA_CHECK_LAUNCH();
}

void batch_norm_update_running(const float* mean, const float* var, float* running_mean,
                               float* running_var, int64_t c, int64_t count, float momentum,
                               cudaStream_t stream) {
  launch(c, stream, [=] __device__(int64_t ch) {
    bn_update_running(mean[ch], var[ch], count, momentum, &running_mean[ch], &running_var[ch]);
  });
}

void batch_norm_forward(const float* x, const float* mean, const float* var, const float* gamma,
                        const float* beta, float* y, int64_t n, int64_t c, int64_t s, float eps,
                        cudaStream_t stream) {
  launch(n * c * s, stream, [=] __device__(int64_t i) {
    const int64_t ch = bn_channel(i, c, s);
    y[i] = bn_normalize(x[i], mean[ch], bn_invstd(var[ch], eps), gamma[ch], beta[ch]);
  });
}

void batch_norm_backward_reduce(const float* x, const float* dy, const float* mean,
                                const float* var, float* sum_dy, float* sum_dy_xhat, int64_t n,
                                int64_t c, int64_t s, float eps, cudaStream_t stream) {
  if (c <= 0) return;
  batch_norm_backward_reduce_kernel<<<static_cast<unsigned>(c), kReduceThreads, 0, stream>>>(
      x, dy, mean, var, sum_dy, sum_dy_xhat, n, c, s, eps);
  IPG_CUDA_CHECK_LAUNCH();
}

void batch_norm_backward_input_train(const float* x, const float* dy, const float* mean,
                                     const float* var, const float* gamma, const float* sum_dy,
                                     const float* sum_dy_xhat, float* dx, int64_t n, int64_t c,
                                     int64_t s, float eps, bool accumulate, cudaStream_t stream) {
  const int64_t count = n * s;
  launch(n * c * s, stream, [=] __device__(int64_t i) {
    const int64_t ch = bn_channel(i, c, s);
    const float g = bn_train_input_grad(dy[i], x[i], mean[ch], bn_invstd(var[ch], eps),
                                        gamma[ch], sum_dy[ch], sum_dy_xhat[ch], count);
    dx[i] = accumulate ? dx[i] + g : g;
  });
}

void batch_norm_backward_input_eval(const float* dy, const float* var, const float* gamma,
                                    float* dx, int64_t n, int64_t c, int64_t s, float eps,
                                    bool accumulate, cudaStream_t stream) {
  launch(n * c * s, stream, [=] __device__(int64_t i) {
    const int64_t ch = bn_channel(i, c, s);
    const float g = bn_eval_input_grad(dy[i], bn_invstd(var[ch], eps), gamma[ch]);
    dx[i] = accumulate ? dx[i] + g : g;
  });
}

}  // namespace ipg::kernels::cuda
