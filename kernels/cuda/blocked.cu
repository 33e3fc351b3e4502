// CUDA kernels of frozen networks (blocked.h): one thread per element through launch.cuh,
// the per-element math of kernels/common (act_shape.h, pool_math.h) that the CPU twins
// run too. The windowed pooling forward and the global average reuse pool.cu's kernels.
#include <stdexcept>
#include <string>

#include "kernels/cuda/blocked.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pool.h"
#include "kernels/cuda/warp_rows.cuh"

namespace ipg::kernels::cuda {

namespace {

// The parts of one launch, by value: a kernel argument needs no device copy of the
// caller's pointer array (and a captured CUDA graph keeps its own).
struct GradParts {
  const float* p[kMaxGradParts];
};

void check_plain(const ActShape& s, const char* op) {
  if (s.block != 1)
    throw std::invalid_argument(std::string(op) +
                                ": CUDA maps are plain NCHW (block 1), got block " +
                                std::to_string(s.block));
}

}  // namespace

void sum_relu_mask(const float* const* grads, int count, const float* mask, float mask_max,
                   float* out, int64_t n, cudaStream_t stream) {
  if (count < 1) throw std::invalid_argument("sum_relu_mask: no gradient parts");
  // Beyond kMaxGradParts parts, each further launch starts from the running sum in out;
  // the mask is applied by the last one.
  for (int done = 0; done < count;) {
    GradParts parts{};
    int m = 0;
    if (done > 0) parts.p[m++] = out;
    while (m < kMaxGradParts && done < count) parts.p[m++] = grads[done++];
    const float* last_mask = done == count ? mask : nullptr;
    launch(n, stream, [=] __device__(int64_t i) {
      float v = parts.p[0][i];
      for (int k = 1; k < m; ++k) v += parts.p[k][i];
      if (last_mask) v = last_mask[i] > 0.f && last_mask[i] < mask_max ? v : 0.f;
      out[i] = v;
    });
  }
}

void channel_affine(const ActShape& s, const float* x, const float* scale, const float* shift,
                    bool relu, float* y, cudaStream_t stream) {
  launch(s.numel(), stream, [=] __device__(int64_t i) {
    const int64_t c = act_channel(s, i);
    y[i] = affine_relu(x[i], scale[c], shift[c], relu);
  });
}

void channel_affine_backward(const ActShape& s, const float* y, const float* dy, const float* scale,
                             bool relu, float* dx, cudaStream_t stream) {
  launch(s.numel(), stream, [=] __device__(int64_t i) {
    dx[i] = affine_relu_backward(y[i], dy[i], scale[act_channel(s, i)], relu);
  });
}

void global_avg_pool(const ActShape& s, const float* x, float* y, cudaStream_t stream) {
  check_plain(s, "global_avg_pool");
  global_avg_pool2d_forward(x, y, s.n * s.c, s.plane(), stream);
}

void global_avg_pool_backward(const ActShape& s, const float* dy, float* dx, cudaStream_t stream) {
  check_plain(s, "global_avg_pool_backward");
  const int64_t plane = s.plane();
  const float inv = 1.f / static_cast<float>(plane);
  launch(s.numel(), stream, [=] __device__(int64_t i) { dx[i] = dy[i / plane] * inv; });
}

void max_pool(const ActShape& s, const PoolGeometry& g, const float* x, float* y, int32_t* argmax,
              cudaStream_t stream) {
  check_plain(s, "max_pool");
  if (!argmax) throw std::invalid_argument("max_pool: CUDA needs an argmax buffer");
  max_pool2d_forward(x, y, argmax, s.n * s.c, g, stream);
}

void max_pool_backward(const ActShape& s, const PoolGeometry& g, const float* /*x*/,
                       const float* /*y*/, const int32_t* argmax, const float* dy, float* dx,
                       cudaStream_t stream) {
  check_plain(s, "max_pool_backward");
  if (!argmax) throw std::invalid_argument("max_pool_backward: CUDA needs the forward's argmax");
  const int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  launch(s.numel(), stream, [=] __device__(int64_t i) {
    const int64_t p = i / in_plane, r = i % in_plane;
    int64_t ph0, ph1, pw0, pw1;
    pool_windows_covering(r / g.w, g.kernel, g.stride, g.pad, g.oh, &ph0, &ph1);
    pool_windows_covering(r % g.w, g.kernel, g.stride, g.pad, g.ow, &pw0, &pw1);
    dx[i] = max_pool_gather(dy + p * out_plane, argmax + p * out_plane, g.ow, ph0, ph1, pw0, pw1,
                            static_cast<int32_t>(r));
  });
}

void avg_pool(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* x, float* y,
              cudaStream_t stream) {
  check_plain(s, "avg_pool");
  avg_pool2d_forward(x, y, s.n * s.c, g, include_pad, stream);
}

void avg_pool_backward(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* dy,
                       float* dx, cudaStream_t stream) {
  check_plain(s, "avg_pool_backward");
  IPG_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(float) * static_cast<size_t>(s.numel()), stream));
  avg_pool2d_backward(dy, dx, s.n * s.c, g, include_pad, stream);
}

void activation(const Activation& f, const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (f.kind == Activation::Kind::Unary) return unary_forward(f.op, x, y, n, stream);
  launch(n, stream, [=] __device__(int64_t i) { y[i] = activation_value(f, x[i]); });
}

void activation_backward(const Activation& f, const float* x, const float* y, const float* dy,
                         float* dx, int64_t n, cudaStream_t stream) {
  if (f.kind == Activation::Kind::Unary)
    return unary_backward(f.op, x, y, dy, dx, n, false, stream);
  launch(n, stream,
         [=] __device__(int64_t i) { dx[i] = activation_grad(f, x[i], y[i], dy[i]); });
}

void channel_scale(const ActShape& s, const float* x, const float* gate, float* y,
                   cudaStream_t stream) {
  const int64_t per_sample = s.c * s.plane();
  launch(s.numel(), stream, [=] __device__(int64_t i) {
    y[i] = x[i] * gate[(i / per_sample) * s.c + act_channel(s, i)];
  });
}

namespace {

// One warp per map (n, c): dx over the map, and dgate[n, c] as a double sum of the
// rounded products (mul_rn: no FMA, the CPU twin's products).
__global__ void channel_scale_backward_kernel(int64_t maps, int64_t plane, const float* x,
                                              const float* gate, const float* dy, float* dx,
                                              float* dgate) {
  for_each_warp_row(maps, [&](int64_t m, int lane) {
    const float g = gate[m];
    const int64_t off = m * plane;
    double acc = 0.0;
    for (int64_t p = lane; p < plane; p += kWarp) {
      dx[off + p] = dy[off + p] * g;
      acc += double(mul_rn(dy[off + p], x[off + p]));
    }
    acc = warp_sum(acc);
    if (lane == 0) dgate[m] = float(acc);
  });
}

}  // namespace

void channel_scale_backward(const ActShape& s, const float* x, const float* gate, const float* dy,
                            float* dx, float* dgate, cudaStream_t stream) {
  check_plain(s, "channel_scale_backward");
  const int64_t maps = s.n * s.c;
  if (maps <= 0) return;
  channel_scale_backward_kernel<<<warp_blocks(maps), kThreads, 0, stream>>>(maps, s.plane(), x,
                                                                           gate, dy, dx, dgate);
  IPG_CUDA_CHECK_LAUNCH();
}

void bias_relu_rows(float* y, const float* bias, int64_t rows, int64_t cols, bool relu,
                    cudaStream_t stream) {
  launch(rows * cols, stream, [=] __device__(int64_t i) {
    const float v = y[i] + (bias ? bias[i % cols] : 0.f);
    y[i] = relu && v < 0.f ? 0.f : v;
  });
}

}  // namespace ipg::kernels::cuda
