// An activation of a frozen network and the per-element math of the kernels that run
// between its layers, shared by the CPU kernels (kernels/cpu/blocked.h: channel-blocked
// maps) and their CUDA twins (kernels/cuda/blocked.h: plain NCHW, block 1).
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

// n maps of c channels, h x w, in channel blocks of `block` (1: plain NCHW). Element
// (sample n, channel k, pixel p) lives at ((n * c/b + k/b) * h*w + p) * b + k%b.
struct ActShape {
  int64_t n = 0, c = 0, h = 0, w = 0, block = 1;
  IPG_HD int64_t plane() const { return h * w; }
  IPG_HD int64_t numel() const { return n * c * h * w; }
};

// The channel of the element at flat index i.
IPG_HD int64_t act_channel(const ActShape& s, int64_t i) {
  const int64_t b = s.block;
  return ((i / (s.plane() * b)) % (s.c / b)) * b + i % b;
}

// x * scale + shift, then max(0, .) when relu (a NaN stays NaN).
IPG_HD float affine_relu(float x, float scale, float shift, bool relu) {
  const float v = x * scale + shift;
  return relu && v < 0.f ? 0.f : v;
}

// The gradient at the affine step's input: dy * scale where its output y is positive (or
// everywhere without the ReLU).
IPG_HD float affine_relu_backward(float y, float dy, float scale, bool relu) {
  const float g = dy * scale;
  return !relu || y > 0.f ? g : 0.f;
}

}  // namespace ipg::kernels
