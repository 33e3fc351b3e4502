// Layout-aware kernels of frozen networks (blocked.h). Element (sample n, channel k,
// pixel p) of a c-channel map with block b lives at ((n * c/b + k/b) * h*w + p) * b + k%b;
// loops run over (sample, channel block) planes and, inside, pixels x lanes, so the
// 16 lanes of a blocked pixel are one vector.
#include "kernels/cpu/blocked.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace ipg::kernels::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, a thread team costs more than it saves

int64_t blocks(const ActShape& s) { return s.c / s.block; }

}  // namespace

int64_t channel_block(int64_t channels) { return channels % 16 == 0 ? 16 : 1; }

void sum_relu_mask(const float* const* grads, int count, const float* mask, float* out, int64_t n) {
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
      for (int64_t i = lo; i < hi; ++i) out[i] = mask[i] > 0.f ? out[i] : 0.f;
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
    for (int64_t i = 0; i < len; i += b)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) {
        const float v = xp[i + l] * scale[c0 + l] + shift[c0 + l];
        yp[i + l] = relu ? std::max(v, 0.f) : v;
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
    for (int64_t i = 0; i < len; i += b)
#pragma omp simd
      for (int64_t l = 0; l < b; ++l) {
        const float g = gp[i + l] * scale[c0 + l];
        dp[i + l] = (!relu || yp[i + l] > 0.f) ? g : 0.f;
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

void max_pool(const ActShape& s, const PoolGeometry& g, const float* x, float* y, int32_t* argmax) {
  const int64_t b = s.block, in_len = g.h * g.w * b, out_len = g.oh * g.ow * b;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * blocks(s); ++q) {
    const float* xp = x + q * in_len;
    for (int64_t ph = 0; ph < g.oh; ++ph)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const PoolWindow win = pool_window(g, ph, pw);
        const int64_t o = q * out_len + (ph * g.ow + pw) * b;
        for (int64_t l = 0; l < b; ++l) {
          int32_t best_i = static_cast<int32_t>(win.hs * g.w + win.ws);
          float best = xp[best_i * b + l];
          for (int64_t ih = win.hs; ih < win.he; ++ih)
            for (int64_t iw = win.ws; iw < win.we; ++iw) {
              const int32_t i = static_cast<int32_t>(ih * g.w + iw);
              const float v = xp[i * b + l];
              if (max_pool_takes(v, best)) best = v, best_i = i;
            }
          y[o + l] = best;
          argmax[o + l] = best_i;
        }
      }
  }
}

void max_pool_backward(const ActShape& s, const PoolGeometry& g, const int32_t* argmax,
                       const float* dy, float* dx) {
  const int64_t b = s.block, in_len = g.h * g.w * b, out_len = g.oh * g.ow * b;
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * blocks(s); ++q) {
    float* dp = dx + q * in_len;
    std::fill(dp, dp + in_len, 0.f);
    const float* gp = dy + q * out_len;
    const int32_t* ap = argmax + q * out_len;
    for (int64_t o = 0; o < g.oh * g.ow; ++o)
      for (int64_t l = 0; l < b; ++l) dp[ap[o * b + l] * b + l] += gp[o * b + l];
  }
}

void unblock(const ActShape& s, const float* x, float* y) {
  const int64_t cb = blocks(s), b = s.block, plane = s.plane();
  if (b == 1) {
    std::memcpy(y, x, sizeof(float) * static_cast<size_t>(s.numel()));
    return;
  }
#pragma omp parallel for schedule(static) if (s.numel() >= kParallelMin)
  for (int64_t q = 0; q < s.n * cb; ++q) {
    const float* xp = x + q * plane * b;
    float* yp = y + q * plane * b;  // channels c0 .. c0+b of sample n: contiguous planes
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t l = 0; l < b; ++l) yp[l * plane + p] = xp[p * b + l];
  }
}

void reblock(const ActShape& s, const float* x, float* y) {
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
      for (int64_t l = 0; l < b; ++l) yp[p * b + l] = xp[l * plane + p];
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
