// Layout-aware kernels of frozen networks (blocked.h). Element (sample n, channel k,
// pixel p) of a c-channel map with block b lives at ((n * c/b + k/b) * h*w + p) * b + k%b;
// loops run over (sample, channel block) planes and, inside, pixels x lanes, so the
// 16 lanes of a blocked pixel are one vector.
#include "kernels/cpu/blocked.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/pool.h"

namespace ipg::kernels::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, a thread team costs more than it saves

int64_t blocks(const ActShape& s) { return s.c / s.block; }

}  // namespace

int64_t channel_block(int64_t channels) { return channels % 16 == 0 ? 16 : 1; }

void sum_relu_mask(const float* const* grads, int count, const float* mask, float mask_max,
                   float* out, int64_t n) {
  const float* g0 = grads[0];
  const float* g1 = count > 1 ? grads[1] : nullptr;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t chunk = 0; chunk < (n + 4095) / 4096; ++chunk) {
    const int64_t lo = chunk * 4096, hi = std::min(n, lo + 4096);
    if (count == 1) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) out[i] = g0[i];
    } else {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) out[i] = g0[i] + g1[i];
      for (int k = 2; k < count; ++k) {
        const float* g = grads[k];
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) out[i] += g[i];
      }
    }
    if (mask) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i)
        out[i] = mask[i] > 0.f && mask[i] < mask_max ? out[i] : 0.f;
    }
  }
}

void channel_affine(const ActShape& s, const float* x, const float* scale, const float* shift,
                    bool relu, float* y) {
  const int64_t cb = blocks(s), b = s.block, len = s.plane() * b;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const int64_t c0 = (q % cb) * b;
    const float* xp = x + q * len;
    float* yp = y + q * len;
    if (b == 1) {  // a plain map (an image's own channels): one scale over the whole plane
      const float sc = scale[c0], sh = shift[c0];
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) yp[i] = affine_relu(xp[i], sc, sh, relu);
      continue;
    }
    for (int64_t i = 0; i < len; i += b)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) {
        yp[i + l] = affine_relu(xp[i + l], scale[c0 + l], shift[c0 + l], relu);
      }
  }
}

void channel_affine_backward(const ActShape& s, const float* y, const float* dy, const float* scale,
                             bool relu, float* dx) {
  const int64_t cb = blocks(s), b = s.block, len = s.plane() * b;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const int64_t c0 = (q % cb) * b;
    const float* yp = y + q * len;
    const float* gp = dy + q * len;
    float* dp = dx + q * len;
    if (b == 1) {  // as in channel_affine: the inner loop over one lane would not vectorize
      const float sc = scale[c0];
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) dp[i] = affine_relu_backward(yp[i], gp[i], sc, relu);
      continue;
    }
    for (int64_t i = 0; i < len; i += b)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) {
        dp[i + l] = affine_relu_backward(yp[i + l], gp[i + l], scale[c0 + l], relu);
      }
  }
}

void global_avg_pool(const ActShape& s, const float* x, float* y) {
  const int64_t cb = blocks(s), b = s.block, plane = s.plane();
  const float inv = 1.f / static_cast<float>(plane);
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const float* xp = x + q * plane * b;
    float acc[16] = {};
    for (int64_t p = 0; p < plane; ++p)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) acc[l] += xp[p * b + l];
    const int64_t n = q / cb, c0 = (q % cb) * b;
    for (int64_t l = 0; l < b; ++l) y[n * s.c + c0 + l] = acc[l] * inv;
  }
}

void global_avg_pool_backward(const ActShape& s, const float* dy, float* dx) {
  const int64_t cb = blocks(s), b = s.block, plane = s.plane();
  const float inv = 1.f / static_cast<float>(plane);
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const int64_t n = q / cb, c0 = (q % cb) * b;
    float g[16];
    for (int64_t l = 0; l < b; ++l) g[l] = dy[n * s.c + c0 + l] * inv;
    float* dp = dx + q * plane * b;
    for (int64_t p = 0; p < plane; ++p)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) dp[p * b + l] = g[l];
  }
}

// Plain maps (block 1) run pool.cpp's row kernels with an argmax. Blocked maps keep no
// argmax: the forward is a running max, one vector per blocked pixel, and the backward
// pass finds each window's winner again as the first pixel (row-major) equal to the
// window's maximum, which is the pixel the strict '>' scan of pool_math keeps (a
// branch-free scan from the last pixel back). A window holding a NaN shows in the lane's
// sum `check` and is redone by the exact rule; its maximum is its first NaN.
void max_pool(const ActShape& s, const PoolGeometry& g, const float* x, float* y, int32_t* argmax) {
  if (s.block == 1) return max_pool2d_forward(x, y, argmax, s.n * s.c, g);
  constexpr int64_t B = 16;
  const int64_t in_len = g.h * g.w * B, out_len = g.oh * g.ow * B;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * blocks(s); ++q) {
    const float* xp = x + q * in_len;
    for (int64_t ph = 0; ph < g.oh; ++ph)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const PoolWindow win = pool_window(g, ph, pw);
        const float* first = xp + (win.hs * g.w + win.ws) * B;
        float best[B], check[B];
        for (int64_t l = 0; l < B; ++l) best[l] = first[l], check[l] = 0.f;
        for (int64_t ih = win.hs; ih < win.he; ++ih)
          for (int64_t iw = win.ws; iw < win.we; ++iw) {
            const float* v = xp + (ih * g.w + iw) * B;
#pragma omp simd
            for (int64_t l = 0; l < B; ++l) {
              check[l] += v[l];
              best[l] = std::max(best[l], v[l]);
            }
          }
        float* out = y + q * out_len + (ph * g.ow + pw) * B;
        for (int64_t l = 0; l < B; ++l) {
          if (check[l] != check[l]) {  // rare: this lane by the exact rule
            best[l] = first[l];
            for (int64_t ih = win.hs; ih < win.he; ++ih)
              for (int64_t iw = win.ws; iw < win.we; ++iw) {
                const float v = xp[(ih * g.w + iw) * B + l];
                if (max_pool_takes(v, best[l])) best[l] = v;
              }
          }
          out[l] = best[l];
        }
      }
  }
}

void max_pool_backward(const ActShape& s, const PoolGeometry& g, const float* x, const float* y,
                       const int32_t* argmax, const float* dy, float* dx) {
  if (s.block == 1) {
    std::memset(dx, 0, sizeof(float) * static_cast<size_t>(s.numel()));
    return max_pool2d_backward(dy, argmax, dx, s.n * s.c, g);
  }
  constexpr int64_t B = 16;
  const int64_t in_len = g.h * g.w * B, out_len = g.oh * g.ow * B;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * blocks(s); ++q) {
    const float* xp = x + q * in_len;
    float* dp = dx + q * in_len;
    std::fill(dp, dp + in_len, 0.f);
    for (int64_t ph = 0; ph < g.oh; ++ph)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const PoolWindow win = pool_window(g, ph, pw);
        const int64_t o = q * out_len + (ph * g.ow + pw) * B;
        const float* m = y + o;
        int32_t at[B];
        for (int64_t l = 0; l < B; ++l) at[l] = 0;
        for (int64_t ih = win.he; ih-- > win.hs;)
          for (int64_t iw = win.we; iw-- > win.ws;) {
            const int32_t i = static_cast<int32_t>(ih * g.w + iw);
            const float* v = xp + i * B;
#pragma omp simd
            for (int64_t l = 0; l < B; ++l)
              at[l] = (v[l] == m[l] || (v[l] != v[l] && m[l] != m[l])) ? i : at[l];
          }
        for (int64_t l = 0; l < B; ++l) dp[at[l] * B + l] += dy[o + l];
      }
  }
}

void avg_pool(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* x, float* y) {
  if (s.block == 1) return avg_pool2d_forward(x, y, s.n * s.c, g, include_pad);
  constexpr int64_t B = 16;
  const int64_t in_len = g.h * g.w * B, out_len = g.oh * g.ow * B;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * blocks(s); ++q) {
    const float* xp = x + q * in_len;
    for (int64_t ph = 0; ph < g.oh; ++ph)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const PoolWindow win = pool_window(g, ph, pw);
        const float div = avg_pool_divisor(g, ph, pw, include_pad);
        float acc[B] = {};
        for (int64_t ih = win.hs; ih < win.he; ++ih)
          for (int64_t iw = win.ws; iw < win.we; ++iw) {
            const float* v = xp + (ih * g.w + iw) * B;
#pragma omp simd
            for (int64_t l = 0; l < B; ++l) acc[l] += v[l];
          }
        float* out = y + q * out_len + (ph * g.ow + pw) * B;
#pragma omp simd
        for (int64_t l = 0; l < B; ++l) out[l] = acc[l] / div;
      }
  }
}

void avg_pool_backward(const ActShape& s, const PoolGeometry& g, bool include_pad, const float* dy,
                       float* dx) {
  if (s.block == 1) {
    std::memset(dx, 0, sizeof(float) * static_cast<size_t>(s.numel()));
    return avg_pool2d_backward(dy, dx, s.n * s.c, g, include_pad);
  }
  constexpr int64_t B = 16;
  const int64_t in_len = g.h * g.w * B, out_len = g.oh * g.ow * B;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * blocks(s); ++q) {
    float* dp = dx + q * in_len;
    std::fill(dp, dp + in_len, 0.f);
    for (int64_t ph = 0; ph < g.oh; ++ph)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const PoolWindow win = pool_window(g, ph, pw);
        const float div = avg_pool_divisor(g, ph, pw, include_pad);
        const float* d = dy + q * out_len + (ph * g.ow + pw) * B;
        float v[B];
        for (int64_t l = 0; l < B; ++l) v[l] = d[l] / div;
        for (int64_t ih = win.hs; ih < win.he; ++ih)
          for (int64_t iw = win.ws; iw < win.we; ++iw) {
            float* t = dp + (ih * g.w + iw) * B;
#pragma omp simd
            for (int64_t l = 0; l < B; ++l) t[l] += v[l];
          }
      }
  }
}

namespace {

// Blocked [n, c/b, h, w, b] <-> plain [n, c, h, w]: a (sample, channel block) is b
// interleaved planes one way and b contiguous planes the other.
void relayout(const ActShape& s, const float* x, float* y, bool to_plain) {
  const int64_t cb = blocks(s), b = s.block, plane = s.plane();
  if (b == 1) {
    std::memcpy(y, x, sizeof(float) * static_cast<size_t>(s.numel()));
    return;
  }
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const float* xp = x + q * plane * b;
    float* yp = y + q * plane * b;
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t l = 0; l < b; ++l) {
        const int64_t blocked = p * b + l, plain = l * plane + p;
        yp[to_plain ? plain : blocked] = xp[to_plain ? blocked : plain];
      }
  }
}

}  // namespace

void unblock(const ActShape& s, const float* x, float* y) { relayout(s, x, y, true); }
void reblock(const ActShape& s, const float* x, float* y) { relayout(s, x, y, false); }

namespace {

// y[i] = op(i) over n elements, the kind's formula fixed outside the loop so it vectorizes.
template <typename Op>
void each(int64_t n, Op op) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) op(i);
}

}  // namespace

void activation(const Activation& f, const float* x, float* y, int64_t n) {
  const float a = f.a, b = f.b, lo = f.lo, hi = f.hi;
  switch (f.kind) {
    case Activation::Kind::Unary: return unary_forward(f.op, x, y, n);
    case Activation::Kind::ClampAffine:
      return each(n, [=](int64_t i) { y[i] = clamp_affine_value(x[i], a, b, lo, hi); });
    case Activation::Kind::Silu: return each(n, [=](int64_t i) { y[i] = silu_value(x[i]); });
  }
}

void activation_backward(const Activation& f, const float* x, const float* y, const float* dy,
                         float* dx, int64_t n) {
  const float a = f.a, b = f.b, lo = f.lo, hi = f.hi;
  switch (f.kind) {
    case Activation::Kind::Unary: return unary_backward(f.op, x, y, dy, dx, n, false);
    case Activation::Kind::ClampAffine:
      return each(n, [=](int64_t i) { dx[i] = clamp_affine_grad(x[i], dy[i], a, b, lo, hi); });
    case Activation::Kind::Silu:
      return each(n, [=](int64_t i) { dx[i] = silu_grad(x[i], dy[i]); });
  }
}

void channel_scale(const ActShape& s, const float* x, const float* gate, float* y) {
  const int64_t cb = blocks(s), b = s.block, len = s.plane() * b;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const float* g = gate + (q / cb) * s.c + (q % cb) * b;
    const float* xp = x + q * len;
    float* yp = y + q * len;
    for (int64_t i = 0; i < len; i += b)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) yp[i + l] = xp[i + l] * g[l];
  }
}

void channel_scale_backward(const ActShape& s, const float* x, const float* gate, const float* dy,
                            float* dx, float* dgate) {
  const int64_t cb = blocks(s), b = s.block, len = s.plane() * b;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const int64_t off = (q / cb) * s.c + (q % cb) * b;
    const float* g = gate + off;
    const float* xp = x + q * len;
    const float* gp = dy + q * len;
    float* dp = dx + q * len;
    double acc[16] = {};  // per lane, pixels in order: the same sum at any thread count
    for (int64_t i = 0; i < len; i += b)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) {
        dp[i + l] = gp[i + l] * g[l];
        acc[l] += double(gp[i + l] * xp[i + l]);
      }
    for (int64_t l = 0; l < b; ++l) dgate[off + l] = float(acc[l]);
  }
}

void bias_relu_rows(float* y, const float* bias, int64_t rows, int64_t cols, bool relu) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t i = 0; i < rows; ++i) {
    float* row = y + i * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) {
      const float v = row[j] + (bias ? bias[j] : 0.f);
      row[j] = relu ? std::max(v, 0.f) : v;
    }
  }
}

}  // namespace ipg::kernels::cpu
