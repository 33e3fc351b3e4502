// CUDA zero padding: one thread per output (forward) or input (backward) element.
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pad.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

// Flat input index that output element i (over all planes) copies, or -1 in the border.
__device__ int64_t zero_pad_source(int64_t i, const PadGeometry& g) {
  const int64_t plane = i / (g.oh * g.ow), r = i % (g.oh * g.ow);
  const int64_t ih = r / g.ow - g.top, iw = r % g.ow - g.left;
  if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) return -1;
  return (plane * g.h + ih) * g.w + iw;
}

// Flat output index that input element i is copied to.
__device__ int64_t zero_pad_target(int64_t i, const PadGeometry& g) {
  const int64_t plane = i / (g.h * g.w), r = i % (g.h * g.w);
  return (plane * g.oh + r / g.w + g.top) * g.ow + r % g.w + g.left;
}

}  // namespace

void zero_pad2d_forward(const float* x, float* y, int64_t planes, const PadGeometry& g,
                        cudaStream_t stream) {
  launch(planes * g.oh * g.ow, stream, [=] __device__(int64_t i) {
    const int64_t src = zero_pad_source(i, g);
    y[i] = src < 0 ? 0.f : x[src];
  });
}

void zero_pad2d_backward(const float* dy, float* dx, int64_t planes, const PadGeometry& g,
                         cudaStream_t stream) {
  launch(planes * g.h * g.w, stream,
         [=] __device__(int64_t i) { dx[i] += dy[zero_pad_target(i, g)]; });
}

}  // namespace ipg::kernels::cuda
