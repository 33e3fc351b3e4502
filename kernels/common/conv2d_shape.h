// Geometry of one 2-D convolution, shared by the CPU twin (oneDNN) and the CUDA kernels
// (cuDNN): NCHW input, weight [c_out, c_in / groups, kh, kw] (OIHW per group). Our own
// networks set `stride` and `padding` only (the same on both axes); ONNX graphs may also
// give the columns their own stride and padding, dilate the kernel and split the channels
// into groups (depthwise: groups == c_in). Zero padding is symmetric on each axis:
// asymmetric ONNX pads are applied by an explicit zero pad before the convolution
// (engine/ops/conv.cpp), because cuDNN's convolution descriptor cannot express them.
#pragma once

#include <stdint.h>

#include <array>
#include <string>

namespace ipg::kernels {

struct Conv2dShape {
  int64_t n = 0, c_in = 0, h = 0, w = 0;
  int64_t c_out = 0, kh = 0, kw = 0;
  // Stride and zero padding of the rows, and of the columns unless stride_w / pad_w are
  // set (-1: as the rows), so that code written for square geometry sets two fields.
  int64_t stride = 1, padding = 0;
  int64_t stride_w = -1, pad_w = -1;
  int64_t dilation_h = 1, dilation_w = 1, groups = 1;

  int64_t sh() const { return stride; }
  int64_t sw() const { return stride_w < 0 ? stride : stride_w; }
  int64_t ph() const { return padding; }
  int64_t pw() const { return pad_w < 0 ? padding : pad_w; }
  // Extent of the dilated kernel.
  int64_t kh_eff() const { return dilation_h * (kh - 1) + 1; }
  int64_t kw_eff() const { return dilation_w * (kw - 1) + 1; }
  int64_t h_out() const { return (h + 2 * ph() - kh_eff()) / sh() + 1; }
  int64_t w_out() const { return (w + 2 * pw() - kw_eff()) / sw() + 1; }
  // Input channels each output channel reads.
  int64_t c_in_group() const { return c_in / groups; }
  // One stride and one padding for both axes: the geometry the frozen-network lowerings
  // (fused convolutions) take, with any dilation and groups.
  bool uniform() const { return sw() == stride && pw() == padding; }
  // uniform(), no dilation and no groups: what conv2d.cpp's own small-channel loops take.
  bool square() const { return uniform() && dilation_h == 1 && dilation_w == 1 && groups == 1; }
  // Multiply-adds times two: the FLOP count of the forward pass (and of each backward one).
  double flops() const { return 2.0 * n * c_out * h_out() * w_out() * c_in_group() * kh * kw; }
  // Square images and kernels, one stride and padding: how benchmarks and tests name a
  // layer (n images of c_in x hw x hw, c_out filters of k x k).
  static Conv2dShape square_layer(int64_t n, int64_t c_in, int64_t hw, int64_t c_out, int64_t k,
                                  int64_t stride, int64_t padding, int64_t groups = 1) {
    Conv2dShape s;
    s.n = n, s.c_in = c_in, s.h = hw, s.w = hw;
    s.c_out = c_out, s.kh = k, s.kw = k;
    s.stride = stride, s.padding = padding, s.groups = groups;
    return s;
  }
  static constexpr size_t kKeySize = 14;
  std::array<int64_t, kKeySize> key() const {
    return {n, c_in, h, w, c_out, kh, kw, sh(), ph(), sw(), pw(), dilation_h, dilation_w, groups};
  }
};

// The three passes a backend plans separately.
enum class ConvPass : int64_t { Forward, BackwardData, BackwardWeights };

// "conv2d forward [n=100, c_in=16, 32x32, c_out=16, kernel 3x3, stride 1, padding 1]", for
// error messages of either backend (dilation and groups named when not 1).
inline std::string describe(ConvPass pass, const Conv2dShape& s) {
  static const char* names[] = {"forward", "backward-data", "backward-weights"};
  auto pair = [](int64_t a, int64_t b) {
    return a == b ? std::to_string(a) : std::to_string(a) + "x" + std::to_string(b);
  };
  std::string out = std::string("conv2d ") + names[static_cast<int>(pass)] +
                    " [n=" + std::to_string(s.n) + ", c_in=" + std::to_string(s.c_in) + ", " +
                    std::to_string(s.h) + "x" + std::to_string(s.w) +
                    ", c_out=" + std::to_string(s.c_out) + ", kernel " + std::to_string(s.kh) +
                    "x" + std::to_string(s.kw) + ", stride " + pair(s.sh(), s.sw()) +
                    ", padding " + pair(s.ph(), s.pw());
  if (s.dilation_h != 1 || s.dilation_w != 1)
    out += ", dilation " + pair(s.dilation_h, s.dilation_w);
  if (s.groups != 1) out += ", groups " + std::to_string(s.groups);
  return out + "]";
}

}  // namespace ipg::kernels
