// Geometry of one 2-D convolution, shared by the CPU twin (oneDNN) and the CUDA kernels
// (cuDNN): symmetric stride and zero padding, NCHW input, OIHW weight.
#pragma once

#include <stdint.h>

#include <array>
#include <string>

namespace ipg::kernels {

struct Conv2dShape {
  int64_t n = 0, c_in = 0, h = 0, w = 0;
  int64_t c_out = 0, kh = 0, kw = 0;
  int64_t stride = 1, padding = 0;

  int64_t h_out() const { return (h + 2 * padding - kh) / stride + 1; }
  int64_t w_out() const { return (w + 2 * padding - kw) / stride + 1; }
  // Multiply-adds times two: the FLOP count of the forward pass (and of each backward one).
  double flops() const { return 2.0 * n * c_out * h_out() * w_out() * c_in * kh * kw; }
  std::array<int64_t, 9> key() const { return {n, c_in, h, w, c_out, kh, kw, stride, padding}; }
};

// The three passes a backend plans separately.
enum class ConvPass : int64_t { Forward, BackwardData, BackwardWeights };

// "conv2d forward [n=100, c_in=16, 32x32, c_out=16, kernel 3x3, stride 1, padding 1]", for
// error messages of either backend.
inline std::string describe(ConvPass pass, const Conv2dShape& s) {
  static const char* names[] = {"forward", "backward-data", "backward-weights"};
  return std::string("conv2d ") + names[static_cast<int>(pass)] + " [n=" + std::to_string(s.n) +
         ", c_in=" + std::to_string(s.c_in) + ", " + std::to_string(s.h) + "x" +
         std::to_string(s.w) + ", c_out=" + std::to_string(s.c_out) + ", kernel " +
         std::to_string(s.kh) + "x" + std::to_string(s.kw) + ", stride " +
         std::to_string(s.stride) + ", padding " + std::to_string(s.padding) + "]";
}

}  // namespace ipg::kernels
