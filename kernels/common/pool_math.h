// Window arithmetic of 2-D pooling, and the geometry of zero padding, shared by
// kernels/cpu and kernels/cuda. A "plane" is one (sample, channel) image, row-major [h, w]; indices
// inside a plane are int32 (h*w < 2^31). Output sizes follow PyTorch's floor or ceil mode.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

struct PoolGeometry {
  int64_t h, w;    // input plane
  int64_t oh, ow;  // output plane
  int kernel, stride, pad;
};

// Output length; < 1 when the kernel does not fit the padded input. Ceil mode (PyTorch's
// ceil_mode, ONNX's) adds a last window that hangs over the end, unless it would start in
// the right padding; the windows clip to the real pixels, so the kernels below need
// nothing else.
IPG_HD int64_t pool_out_size(int64_t in, int kernel, int stride, int pad, bool ceil = false) {
  const int64_t span = in + 2 * pad - kernel;
  if (span < 0) return 0;
  int64_t out = (ceil ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil && (out - 1) * stride >= in + pad) --out;
  return out;
}

// The geometry of pooling an h x w plane (oh or ow < 1: the window does not fit); the one
// constructor the op, the frozen graph and the CUDA lowering share.
IPG_HD PoolGeometry pool_geometry(int64_t h, int64_t w, int kernel, int stride, int pad,
                                  bool ceil) {
  return PoolGeometry{h,      w,      pool_out_size(h, kernel, stride, pad, ceil),
                      pool_out_size(w, kernel, stride, pad, ceil), kernel, stride, pad};
}

// The real pixels [hs, he) x [ws, we) under the window of output (ph, pw). Never empty:
// padding is at most half the kernel, and a ceil-mode window starts inside the input.
struct PoolWindow {
  int64_t hs, he, ws, we;
};

IPG_HD PoolWindow pool_window(const PoolGeometry& g, int64_t ph, int64_t pw) {
  const int64_t h0 = ph * g.stride - g.pad, w0 = pw * g.stride - g.pad;
  PoolWindow r;
  r.hs = h0 > 0 ? h0 : 0;
  r.ws = w0 > 0 ? w0 : 0;
  r.he = h0 + g.kernel < g.h ? h0 + g.kernel : g.h;
  r.we = w0 + g.kernel < g.w ? w0 + g.kernel : g.w;
  return r;
}

// Whether v replaces the running maximum `best`: only when strictly larger, so ties keep
// the first index; and the first NaN, which then stays (NaN propagates, as in PyTorch).
IPG_HD bool max_pool_takes(float v, float best) { return v > best || (v != v && best == best); }

struct MaxPoolResult {
  float value;
  int32_t index;  // in the input plane
};

// Max over the real pixels of `win` by the exact rule, row-major.
IPG_HD MaxPoolResult max_pool_scan(const float* plane, const PoolGeometry& g,
                                   const PoolWindow& win) {
  MaxPoolResult r{plane[win.hs * g.w + win.ws], static_cast<int32_t>(win.hs * g.w + win.ws)};
  for (int64_t ih = win.hs; ih < win.he; ++ih)
    for (int64_t iw = win.ws; iw < win.we; ++iw) {
      const float v = plane[ih * g.w + iw];
      if (max_pool_takes(v, r.value)) {
        r.value = v;
        r.index = static_cast<int32_t>(ih * g.w + iw);
      }
    }
  return r;
}

// Max over the window of output (ph, pw); padding acts as -inf, so only real pixels are
// scanned. The first pass compares with a plain '>', which compilers turn into selects
// (the NaN rule makes them branch, and on real data such branches are coin flips); it
// agrees with max_pool_takes unless the window holds a NaN, and those rare windows are
// scanned again by the exact rule.
IPG_HD MaxPoolResult max_pool_window(const float* plane, const PoolGeometry& g, int64_t ph,
                                     int64_t pw) {
  const PoolWindow win = pool_window(g, ph, pw);
  float best = plane[win.hs * g.w + win.ws];
  int32_t index = static_cast<int32_t>(win.hs * g.w + win.ws);
  bool nan = false;
  for (int64_t ih = win.hs; ih < win.he; ++ih)
    for (int64_t iw = win.ws; iw < win.we; ++iw) {
      const int32_t i = static_cast<int32_t>(ih * g.w + iw);
      const float v = plane[i];
      nan |= v != v;
      index = v > best ? i : index;
      best = v > best ? v : best;
    }
  return nan ? max_pool_scan(plane, g, win) : MaxPoolResult{best, index};
}

// Outputs [*first, *last) along one axis whose window covers input position i. The CUDA
// backward kernels gather over these, one thread per input, instead of scattering from
// the outputs: overlapping windows would otherwise race, or need float atomics whose
// order varies run to run.
IPG_HD void pool_windows_covering(int64_t i, int kernel, int stride, int pad, int64_t out_len,
                                  int64_t* first, int64_t* last) {
  const int64_t p = i + pad;
  *first = p < kernel ? 0 : (p - kernel) / stride + 1;
  const int64_t l = p / stride + 1;
  *last = l < out_len ? l : out_len;
}

// Gradient reaching input `self` of one plane from the windows [ph0, ph1) x [pw0, pw1)
// that cover it: the sum of dy over those that chose it as their maximum, added in
// row-major output order from zero, as the CPU twin's scatter adds them.
IPG_HD float max_pool_gather(const float* dy_plane, const int32_t* argmax_plane, int64_t ow,
                             int64_t ph0, int64_t ph1, int64_t pw0, int64_t pw1, int32_t self) {
  float acc = 0.f;
  for (int64_t ph = ph0; ph < ph1; ++ph)
    for (int64_t pw = pw0; pw < pw1; ++pw)
      if (argmax_plane[ph * ow + pw] == self) acc += dy_plane[ph * ow + pw];
  return acc;
}

// PyTorch's divisor: the window clipped to the padded input (count_include_pad), or to
// the real pixels only.
IPG_HD float avg_pool_divisor(const PoolGeometry& g, int64_t ph, int64_t pw,
                              bool count_include_pad) {
  if (!count_include_pad) {
    const PoolWindow win = pool_window(g, ph, pw);
    return static_cast<float>((win.he - win.hs) * (win.we - win.ws));
  }
  const int64_t hs = ph * g.stride - g.pad, ws = pw * g.stride - g.pad;
  const int64_t he = hs + g.kernel < g.h + g.pad ? hs + g.kernel : g.h + g.pad;
  const int64_t we = ws + g.kernel < g.w + g.pad ? ws + g.kernel : g.w + g.pad;
  return static_cast<float>((he - hs) * (we - ws));
}

IPG_HD float avg_pool_window(const float* plane, const PoolGeometry& g, int64_t ph, int64_t pw,
                             bool count_include_pad) {
  const PoolWindow win = pool_window(g, ph, pw);
  float acc = 0.f;
  for (int64_t ih = win.hs; ih < win.he; ++ih)
    for (int64_t iw = win.ws; iw < win.we; ++iw) acc += plane[ih * g.w + iw];
  return acc / avg_pool_divisor(g, ph, pw, count_include_pad);
}

struct PadGeometry {
  int64_t h, w;    // input plane
  int64_t oh, ow;  // output plane: h + top + bottom, w + left + right
  int top, left;
};

}  // namespace ipg::kernels
