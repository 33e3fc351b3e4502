// CPU pooling (OpenMP) over rows or planes, so that no per-element integer division is
// needed (it would cost more than the pooling itself). Work is split by output row
// (forward) or plane (backward), never inside a sum, so results do not depend on the
// thread count, and they match the CUDA kernels' summation order.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace ipg::kernels::cpu {

namespace {

// Below this much work, thread start-up costs more than the loop.
constexpr int64_t kParallelMin = 1 << 14;

// Runs f(plane, row) for every row of every plane (rows_per_plane rows each).
template <typename F>
void for_each_row(int64_t planes, int64_t rows_per_plane, int64_t work_per_row, F f) {
  const int64_t rows = planes * rows_per_plane;
#pragma omp parallel for schedule(static) if (rows * work_per_row >= kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) f(pr / rows_per_plane, pr % rows_per_plane);
}

// Backward, plane by plane: each output adds its gradient into a zeroed plane-sized
// buffer (row-major output order), which is then added to dx. Every input thus receives
// its contributions in the same order, starting from zero, as the CUDA gather sums them,
// so both devices give the same bits; and each output is visited once, where a gather
// visits every covering window of every input.
template <typename Scatter>
void backward_by_plane(float* dx, int64_t planes, const PoolGeometry& g, Scatter scatter) {
  const int64_t in_plane = g.h * g.w;
#pragma omp parallel if (planes * in_plane >= kParallelMin)
  {
    std::vector<float> acc(static_cast<std::size_t>(in_plane));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      std::fill(acc.begin(), acc.end(), 0.f);
      scatter(p, acc.data());
      float* d = dx + p * in_plane;
      for (int64_t i = 0; i < in_plane; ++i) d[i] += acc[i];
    }
  }
}

// max_pool_window for a window wholly inside the plane, its size K fixed at compile
// time: loops the compiler unrolls, several times faster for the common 2x2 and 3x3
// pools. The same scan and the same NaN fallback, so the same value and index.
template <int K>
MaxPoolResult max_pool_interior(const float* plane, const PoolGeometry& g, int64_t ph, int64_t pw) {
  const int64_t h0 = ph * g.stride - g.pad, w0 = pw * g.stride - g.pad;
  float best = plane[h0 * g.w + w0];
  int32_t index = static_cast<int32_t>(h0 * g.w + w0);
  bool nan = false;
  for (int a = 0; a < K; ++a)
    for (int b = 0; b < K; ++b) {
      const int32_t i = static_cast<int32_t>((h0 + a) * g.w + w0 + b);
      const float v = plane[i];
      nan |= v != v;
      index = v > best ? i : index;
      best = v > best ? v : best;
    }
  return nan ? max_pool_scan(plane, g, PoolWindow{h0, h0 + K, w0, w0 + K})
             : MaxPoolResult{best, index};
}

// K = 0: no fixed size, every window takes the general path.
template <int K>
void max_pool_forward_rows(const float* x, float* y, int32_t* argmax, int64_t planes,
                           const PoolGeometry& g) {
  // Outputs [pw_lo, pw_hi) of a row have windows inside the plane's columns.
  int64_t pw_lo = 0, pw_hi = 0;
  if (K > 0 && g.w >= K) {
    pw_lo = (g.pad + g.stride - 1) / g.stride;
    pw_hi = (g.w - K + g.pad) / g.stride + 1;
    if (pw_hi > g.ow) pw_hi = g.ow;
    if (pw_lo > pw_hi) pw_lo = pw_hi;
  }
  for_each_row(planes, g.oh, g.ow * g.kernel * g.kernel, [&](int64_t p, int64_t ph) {
    const float* plane = x + p * g.h * g.w;
    const int64_t row = (p * g.oh + ph) * g.ow, h0 = ph * g.stride - g.pad;
    const bool rows_inside = K > 0 && h0 >= 0 && h0 + K <= g.h;
    const int64_t lo = rows_inside ? pw_lo : g.ow, hi = rows_inside ? pw_hi : g.ow;
    auto store = [&](int64_t pw, const MaxPoolResult& m) {
      y[row + pw] = m.value;
      if (argmax) argmax[row + pw] = m.index;
    };
    for (int64_t pw = 0; pw < lo; ++pw) store(pw, max_pool_window(plane, g, ph, pw));
    for (int64_t pw = lo; pw < hi; ++pw) store(pw, max_pool_interior<K>(plane, g, ph, pw));
    for (int64_t pw = hi; pw < g.ow; ++pw) store(pw, max_pool_window(plane, g, ph, pw));
  });
}

// 2x2 windows at stride 2 without padding, all inside the plane (LeNet-5, VGG16), a whole output row at a
// time as one vector loop: each window's four pixels compared in row-major order with
// strict '>' (max_pool_scan's first-index rule) by selects. A NaN anywhere in the row
// shows in the sum `check` (as does +inf meeting -inf), and such rows are redone by the
// exact scan, so values and indices equal max_pool_window's.
template <bool WithIndex>
void max_pool_2x2_rows(const float* x, float* y, int32_t* argmax, int64_t planes,
                       const PoolGeometry& g) {
  for_each_row(planes, g.oh, g.ow * 4, [&](int64_t p, int64_t ph) {
    const float* plane = x + p * g.h * g.w;
    const float* r0 = plane + 2 * ph * g.w;
    const float* r1 = r0 + g.w;
    float* yr = y + (p * g.oh + ph) * g.ow;
    int32_t* ar = WithIndex ? argmax + (p * g.oh + ph) * g.ow : nullptr;
    const int32_t top = static_cast<int32_t>(2 * ph * g.w), below = static_cast<int32_t>(g.w);
    float check = 0.f;
#pragma omp simd reduction(+ : check)
    for (int64_t pw = 0; pw < g.ow; ++pw) {
      const float a = r0[2 * pw], b = r0[2 * pw + 1], c = r1[2 * pw], d = r1[2 * pw + 1];
      check += (a + b) + (c + d);
      const int32_t i = top + static_cast<int32_t>(2 * pw);
      float best = a;
      int32_t index = i;
      index = b > best ? i + 1 : index;
      best = b > best ? b : best;
      index = c > best ? i + below : index;
      best = c > best ? c : best;
      index = d > best ? i + below + 1 : index;
      best = d > best ? d : best;
      yr[pw] = best;
      if (WithIndex) ar[pw] = index;
    }
    if (check != check)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const MaxPoolResult m = max_pool_window(plane, g, ph, pw);
        yr[pw] = m.value;
        if (WithIndex) ar[pw] = m.index;
      }
  });
}

}  // namespace

void max_pool2d_forward(const float* x, float* y, int32_t* argmax, int64_t planes,
                        const PoolGeometry& g) {
  // A ceil-mode overhang (odd sizes) would read past a row: the general path clips it.
  if (g.kernel == 2 && g.stride == 2 && g.pad == 0 && 2 * g.oh <= g.h && 2 * g.ow <= g.w)
    return argmax ? max_pool_2x2_rows<true>(x, y, argmax, planes, g)
                  : max_pool_2x2_rows<false>(x, y, argmax, planes, g);
  switch (g.kernel) {
    case 2:
      return max_pool_forward_rows<2>(x, y, argmax, planes, g);
    case 3:
      return max_pool_forward_rows<3>(x, y, argmax, planes, g);
    default:
      return max_pool_forward_rows<0>(x, y, argmax, planes, g);
  }
}

void max_pool2d_backward(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                         const PoolGeometry& g) {
  const int64_t out_plane = g.oh * g.ow;
  backward_by_plane(dx, planes, g, [&](int64_t p, float* acc) {
    const float* d = dy + p * out_plane;
    const int32_t* a = argmax + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) acc[a[o]] += d[o];
  });
}

void avg_pool2d_forward(const float* x, float* y, int64_t planes, const PoolGeometry& g,
                        bool count_include_pad) {
  for_each_row(planes, g.oh, g.ow * g.kernel * g.kernel, [&](int64_t p, int64_t ph) {
    const float* plane = x + p * g.h * g.w;
    float* y_row = y + (p * g.oh + ph) * g.ow;
    for (int64_t pw = 0; pw < g.ow; ++pw)
      y_row[pw] = avg_pool_window(plane, g, ph, pw, count_include_pad);
  });
}

void avg_pool2d_backward(const float* dy, float* dx, int64_t planes, const PoolGeometry& g,
                         bool count_include_pad) {
  backward_by_plane(dx, planes, g, [&](int64_t p, float* acc) {
    const float* d = dy + p * g.oh * g.ow;
    for (int64_t ph = 0; ph < g.oh; ++ph)
      for (int64_t pw = 0; pw < g.ow; ++pw) {
        const float v = d[ph * g.ow + pw] / avg_pool_divisor(g, ph, pw, count_include_pad);
        const PoolWindow win = pool_window(g, ph, pw);
        for (int64_t ih = win.hs; ih < win.he; ++ih)
          for (int64_t iw = win.ws; iw < win.we; ++iw) acc[ih * g.w + iw] += v;
      }
  });
}

void global_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t s) {
#pragma omp parallel for schedule(static) if (planes * s >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    double acc = 0.0;
    for (int64_t i = 0; i < s; ++i) acc += x[p * s + i];
    y[p] = static_cast<float>(acc / static_cast<double>(s));
  }
}

void global_avg_pool2d_backward(const float* dy, float* dx, int64_t planes, int64_t s) {
  const float inv = 1.f / static_cast<float>(s);
#pragma omp parallel for schedule(static) if (planes * s >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float g = dy[p] * inv;
    for (int64_t i = 0; i < s; ++i) dx[p * s + i] += g;
  }
}

}  // namespace ipg::kernels::cpu
