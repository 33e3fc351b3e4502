// The step kinds of a FrozenGraph (added by engine/frozen_graph_build.cpp): each one's
// forward and backward over the CPU kernels, reading and writing through the graph's
// State. Not part of the engine's API.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <vector>

#include "engine/frozen_graph_internal.h"
#include "kernels/cpu/blocked.h"
#include "kernels/cpu/fused_conv.h"
#include "kernels/cpu/gemm.h"

namespace ipg::frozen_detail {

using State = FrozenGraph::State;
using Step = FrozenGraph::Step;

// x * scale[c] + shift[c], then ReLU: normalization and stand-alone batch norm.
struct AffineStep : Step {
  Value x;
  bool relu;
  std::vector<float> scale, shift;
  int dx;
  void forward(State& g) override {
    kc::channel_affine(g.at(x).act, g.in(x), scale.data(), shift.data(), relu, g.out(y));
  }
  void backward(State& g) override {
    // The ReLU is applied with the scale here, so grad() does not mask.
    kc::channel_affine_backward(g.at(x).act, g.in(y), g.grad(*this), scale.data(), relu, g.ptr(dx));
  }
};

struct ConvStep : Step {
  Value x, residual;
  std::unique_ptr<kc::FusedConv> conv;
  int dx;
  void forward(State& g) override {
    conv->forward(g.in(x), residual == FrozenGraph::kNone ? nullptr : g.in(residual), g.out(y),
                  g.workspace.raw(), g.workspace.nbytes());
  }
  void backward(State& g) override {
    conv->backward_data(g.grad(*this), g.ptr(dx), g.workspace.raw(), g.workspace.nbytes());
  }
  size_t workspace() const override { return conv->workspace_bytes(); }
};

struct MaxPoolStep : Step {
  Value x;
  kernels::PoolGeometry geom;
  Tensor argmax;  // plain maps only
  int dx;
  int32_t* index() { return argmax.defined() ? argmax.data_i32() : nullptr; }
  void forward(State& g) override { kc::max_pool(g.at(x).act, geom, g.in(x), g.out(y), index()); }
  void backward(State& g) override {
    kc::max_pool_backward(g.at(x).act, geom, g.in(x), g.in(y), index(), g.grad(*this), g.ptr(dx));
  }
};

// An average pool over windows (AvgPoolStep below is the global one).
struct WindowAvgPoolStep : Step {
  Value x;
  kernels::PoolGeometry geom;
  bool include_pad = true;
  int dx;
  void forward(State& g) override { kc::avg_pool(g.at(x).act, geom, include_pad, g.in(x), g.out(y)); }
  void backward(State& g) override {
    kc::avg_pool_backward(g.at(x).act, geom, include_pad, g.grad(*this), g.ptr(dx));
  }
};

struct AvgPoolStep : Step {
  Value x;
  int dx;
  void forward(State& g) override { kc::global_avg_pool(g.at(x).act, g.in(x), g.out(y)); }
  void backward(State& g) override {
    kc::global_avg_pool_backward(g.at(x).act, g.grad(*this), g.ptr(dx));
  }
};

// Between layouts: to plain NCHW (flatten) or to the blocked layout (a conv's input).
struct LayoutStep : Step {
  Value x;
  bool to_plain;
  int dx;
  void forward(State& g) override {
    const kc::ActShape& s = to_plain ? g.at(x).act : g.at(y).act;
    (to_plain ? kc::unblock : kc::reblock)(s, g.in(x), g.out(y));
  }
  void backward(State& g) override {
    const kc::ActShape& s = to_plain ? g.at(x).act : g.at(y).act;
    (to_plain ? kc::reblock : kc::unblock)(s, g.grad(*this), g.ptr(dx));
  }
};

// An element-wise activation: its input is kept (a value of the graph) for the backward.
struct ActStep : Step {
  Value x;
  kernels::Activation f;
  int dx;
  void forward(State& g) override { kc::activation(f, g.in(x), g.out(y), g.at(y).act.numel()); }
  void backward(State& g) override {
    kc::activation_backward(f, g.in(x), g.in(y), g.grad(*this), g.ptr(dx), g.at(y).act.numel());
  }
};

// Squeeze-and-excitation's product of a map with its gate [n, C]: two inputs, two
// gradient contributions.
struct ChannelScaleStep : Step {
  Value x, gate;
  int dx, dgate;
  void forward(State& g) override { kc::channel_scale(g.at(x).act, g.in(x), g.in(gate), g.out(y)); }
  void backward(State& g) override {
    kc::channel_scale_backward(g.at(x).act, g.in(x), g.in(gate), g.grad(*this), g.ptr(dx),
                               g.ptr(dgate));
  }
};

struct LinearStep : Step {  // relu: Step::mask
  Value x;
  int64_t n, in, out;
  std::vector<float> weight, bias;  // [out, in], [out] or empty
  int dx;
  void forward(State& g) override {
    kc::gemm(false, true, n, out, in, 1.f, g.in(x), in, weight.data(), in, 0.f, g.out(y), out);
    kc::bias_relu_rows(g.out(y), bias.empty() ? nullptr : bias.data(), n, out, mask);
  }
  void backward(State& g) override {
    kc::gemm(false, false, n, in, out, 1.f, g.grad(*this), out, weight.data(), in, 0.f, g.ptr(dx),
             in);
  }
};

}  // namespace ipg::frozen_detail
