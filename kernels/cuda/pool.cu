// CUDA pooling. Windowed pools run one thread per output (forward) or per input
// (backward, gathering from the covering windows: no atomics, fixed order); the global
// average gives each plane one warp and a fixed shuffle tree.
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pool.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

// Gradient reaching one input from the windows [ph0, ph1) x [pw0, pw1) covering it.
__device__ float avg_pool_gather(const float* dy_plane, const PoolGeometry& g, int64_t ph0,
                                 int64_t ph1, int64_t pw0, int64_t pw1, bool count_include_pad) {
  float acc = 0.f;
  for (int64_t ph = ph0; ph < ph1; ++ph)
    for (int64_t pw = pw0; pw < pw1; ++pw)
      acc += dy_plane[ph * g.ow + pw] / avg_pool_divisor(g, ph, pw, count_include_pad);
  return acc;
}

constexpr int kWarpsPerBlock = kThreads / 32;

// Plane means are short sums (h*w is 49 or 64 in the usual heads), so a warp per plane
// keeps the lanes busy where a block per plane would leave most threads idle.
__global__ void global_avg_pool2d_forward_kernel(const float* x, float* y, int64_t planes,
                                                 int64_t s) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarpsPerBlock;
  for (int64_t p = blockIdx.x * (int64_t)kWarpsPerBlock + (threadIdx.x >> 5); p < planes;
       p += warps) {
    double acc = 0.0;
    for (int64_t i = lane; i < s; i += 32) acc += x[p * s + i];
    for (int offset = 16; offset > 0; offset >>= 1)
      acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (lane == 0) y[p] = static_cast<float>(acc / static_cast<double>(s));
  }
}

}  // namespace

void max_pool2d_forward(const float* x, float* y, int32_t* argmax, int64_t planes,
                        const PoolGeometry& g, cudaStream_t stream) {
  const int64_t out_plane = g.oh * g.ow;
  launch(planes * out_plane, stream, [=] __device__(int64_t i) {
    const int64_t p = i / out_plane, r = i % out_plane;
    const MaxPoolResult m = max_pool_window(x + p * g.h * g.w, g, r / g.ow, r % g.ow);
    y[i] = m.value;
    if (argmax) argmax[i] = m.index;
  });
}

void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                         const PoolGeometry& g, cudaStream_t stream) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  launch(planes * in_plane, stream, [=] __device__(int64_t i) {
    const int64_t p = i / in_plane, r = i % in_plane, ih = r / g.w, iw = r % g.w;
    int64_t ph0, ph1, pw0, pw1;
    pool_windows_covering(ih, g.kernel, g.stride, g.pad, g.oh, &ph0, &ph1);
    pool_windows_covering(iw, g.kernel, g.stride, g.pad, g.ow, &pw0, &pw1);
    dx[i] += max_pool_gather(dy + p * out_plane, argmax + p * out_plane, g.ow, ph0, ph1, pw0, pw1,
                             static_cast<int32_t>(r));
  });
}

void avg_pool2d_forward(const float* x, float* y, int64_t planes, const PoolGeometry& g,
                        bool count_include_pad, cudaStream_t stream) {
  const int64_t out_plane = g.oh * g.ow;
  launch(planes * out_plane, stream, [=] __device__(int64_t i) {
    const int64_t p = i / out_plane, r = i % out_plane;
    y[i] = avg_pool_window(x + p * g.h * g.w, g, r / g.ow, r % g.ow, count_include_pad);
  });
}

void avg_pool2d_backward(const float* dy, float* dx, int64_t planes, const PoolGeometry& g,
                         bool count_include_pad, cudaStream_t stream) {
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  launch(planes * in_plane, stream, [=] __device__(int64_t i) {
    const int64_t p = i / in_plane, r = i % in_plane;
    int64_t ph0, ph1, pw0, pw1;
    pool_windows_covering(r / g.w, g.kernel, g.stride, g.pad, g.oh, &ph0, &ph1);
    pool_windows_covering(r % g.w, g.kernel, g.stride, g.pad, g.ow, &pw0, &pw1);
    dx[i] += avg_pool_gather(dy + p * out_plane, g, ph0, ph1, pw0, pw1, count_include_pad);
  });
}

void global_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t s,
                               cudaStream_t stream) {
  if (planes <= 0) return;
  const unsigned blocks = blocks_for(planes * 32);
  global_avg_pool2d_forward_kernel<<<blocks, kThreads, 0, stream>>>(x, y, planes, s);
  IPG_CUDA_CHECK_LAUNCH();
}

void global_avg_pool2d_backward(const float* dy, float* dx, int64_t planes, int64_t s,
                                cudaStream_t stream) {
  const float inv = 1.f / static_cast<float>(s);
  launch(planes * s, stream, [=] __device__(int64_t i) { dx[i] += dy[i / s] * inv; });
}

}  // namespace ipg::kernels::cuda
