// FrozenGraphCuda, lowering a plan: the step types (affine, fused conv, max and global
// average pool, linear, activation, channel scale) with their forward and backward
// kernels, State::lower, which checks each planned step and builds its step, and
// State::finish, which places the gradient slots by liveness and wires each step's
// gradient parts.
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/frozen_graph_cuda_internal.h"
#include "engine/ops/view.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/fused_conv.h"
#include "kernels/cuda/gemm.h"

namespace ipg {

namespace kc = kernels::cuda;
using frozen_cuda_detail::act_of;
using frozen_cuda_detail::ValueInfo;

namespace {

using State = FrozenGraphCuda::State;
using Step = FrozenGraphCuda::Step;

// IPG_CUDNN_CONV_ENGINE=graph runs the convolutions' forward through cuDNN's graph API
// (kernels/cuda/cudnn_graph_conv.h) where an engine accepts the conv under our precision
// rules, and the legacy fused call where none does. A measurement switch (tools/gpu-check
// times both, bench/README.md), not a user setting: unset, or any other value, is the
// legacy call, until a GPU report shows which is faster.
kc::ConvEngine conv_engine() {
  static const bool graph = [] {
    const char* v = getenv("IPG_CUDNN_CONV_ENGINE");
    return v && std::string(v) == "graph";
  }();
  return graph ? kc::ConvEngine::Graph : kc::ConvEngine::Legacy;
}

std::unique_ptr<kc::FusedConv> make_conv(const kernels::Conv2dShape& cs, const float* weight,
                                         const float* bias, bool residual, bool relu,
                                         cudaStream_t stream) {
  if (conv_engine() == kc::ConvEngine::Graph) {
    try {
      return std::make_unique<kc::FusedConv>(cs, weight, bias, residual, relu, stream,
                                             kc::ConvEngine::Graph);
    } catch (const CudaError&) {
      // No graph engine for this conv: the legacy call, which accepts every shape the
      // planner lowers.
    }
  }
  return std::make_unique<kc::FusedConv>(cs, weight, bias, residual, relu, stream);
}

Tensor on(const std::vector<float>& v, Device d) {
  return Tensor::from_vector(v, {int64_t(v.size())}, d);
}

// x * scale[c] + shift[c], then ReLU: input normalization, a batch norm after no conv.
struct AffineStep : Step {
  int x = 0, dx = 0;
  bool relu = false;
  Tensor scale, shift;
  void forward(State& g) override {
    kc::channel_affine(g.act(x), g.in(x), scale.data(), shift.data(), relu, g.out(y), g.stream);
  }
  void backward(State& g) override {
    // The ReLU is applied with the scale here, so grad() does not mask.
    kc::channel_affine_backward(g.act(x), g.in(y), g.grad(*this), scale.data(), relu, g.ptr(dx),
                                g.stream);
  }
};

struct ConvStep : Step {  // relu: Step::mask
  int x = 0, residual = -1, dx = 0;
  std::unique_ptr<kc::FusedConv> conv;
  void forward(State& g) override {
    conv->forward(g.in(x), residual < 0 ? nullptr : g.in(residual), g.out(y), g.workspace.raw(),
                  g.workspace.nbytes());
  }
  void backward(State& g) override {
    conv->backward_data(g.grad(*this), g.ptr(dx), g.workspace.raw(), g.workspace.nbytes());
  }
  size_t workspace() const override { return conv->workspace_bytes(); }
};

struct MaxPoolStep : Step {
  int x = 0, dx = 0;
  kernels::PoolGeometry geom{};
  Tensor argmax;
  void forward(State& g) override {
    kc::max_pool(g.act(x), geom, g.in(x), g.out(y), argmax.data_i32(), g.stream);
  }
  void backward(State& g) override {
    kc::max_pool_backward(g.act(x), geom, g.in(x), g.in(y), argmax.data_i32(), g.grad(*this),
                          g.ptr(dx), g.stream);
  }
};

struct WindowAvgPoolStep : Step {
  int x = 0, dx = 0;
  kernels::PoolGeometry geom{};
  bool include_pad = true;
  void forward(State& g) override {
    kc::avg_pool(g.act(x), geom, include_pad, g.in(x), g.out(y), g.stream);
  }
  void backward(State& g) override {
    kc::avg_pool_backward(g.act(x), geom, include_pad, g.grad(*this), g.ptr(dx), g.stream);
  }
};

struct AvgPoolStep : Step {
  int x = 0, dx = 0;
  void forward(State& g) override { kc::global_avg_pool(g.act(x), g.in(x), g.out(y), g.stream); }
  void backward(State& g) override {
    kc::global_avg_pool_backward(g.act(x), g.grad(*this), g.ptr(dx), g.stream);
  }
};

struct LinearStep : Step {  // relu: Step::mask
  int x = 0, dx = 0;
  int64_t n = 0, in = 0, out = 0;
  Tensor weight, bias;  // [out, in], [out] or undefined
  void forward(State& g) override {
    kc::gemm(false, true, n, out, in, 1.f, g.in(x), in, weight.data(), in, 0.f, g.out(y), out,
             g.stream);
    kc::bias_relu_rows(g.out(y), bias.defined() ? bias.data() : nullptr, n, out, mask, g.stream);
  }
  void backward(State& g) override {
    kc::gemm(false, false, n, in, out, 1.f, g.grad(*this), out, weight.data(), in, 0.f, g.ptr(dx),
             in, g.stream);
  }
};

// An element-wise activation: its input is kept for the backward.
struct ActStep : Step {
  int x = 0, dx = 0;
  kernels::Activation f;
  void forward(State& g) override {
    kc::activation(f, g.in(x), g.out(y), g.act(y).numel(), g.stream);
  }
  void backward(State& g) override {
    kc::activation_backward(f, g.in(x), g.in(y), g.grad(*this), g.ptr(dx), g.act(y).numel(),
                            g.stream);
  }
};

// Squeeze-and-excitation's product of a map with its gate [n, C].
struct ChannelScaleStep : Step {
  int x = 0, gate = 0, dx = 0, dgate = 0;
  void forward(State& g) override {
    kc::channel_scale(g.act(x), g.in(x), g.in(gate), g.out(y), g.stream);
  }
  void backward(State& g) override {
    kc::channel_scale_backward(g.act(x), g.in(x), g.in(gate), g.grad(*this), g.ptr(dx),
                               g.ptr(dgate), g.stream);
  }
};

[[noreturn]] void refuse(const PlanStep& s, const std::string& why) {
  throw std::invalid_argument("FrozenGraphCuda: step " + s.from + ": " + why);
}

}  // namespace

void FrozenGraphCuda::State::lower(const Plan& plan) {
  if (plan.input.size() != 4 || shape_numel(plan.input) <= 0)
    throw std::invalid_argument("FrozenGraphCuda: input must be [n, C, H, W], got " +
                                shape_str(plan.input));
  ValueInfo input;
  input.shape = plan.input;
  input.act = act_of(plan.input);
  values.push_back(std::move(input));  // data: the caller's tensor, set by forward()
  std::vector<int> v{0};               // plan value -> graph value
  for (const PlanStep& s : plan.steps) {
    const int x = v.at(size_t(s.x));
    const Shape& xs = at(x).shape;
    const bool map = xs.size() == 4;
    if (s.kind == PlanStep::Kind::Flatten) {
      if (!map) refuse(s, "flattens " + shape_str(xs));
      v.push_back(alias(x, {xs[0], xs[1] * xs[2] * xs[3]}));
    } else if (s.kind == PlanStep::Kind::Affine) {
      if (!map || int64_t(s.scale.size()) != xs[1] || s.shift.size() != s.scale.size())
        refuse(s, std::to_string(s.scale.size()) + " channels for " + shape_str(xs));
      auto step = std::make_unique<AffineStep>();
      step->x = x;
      step->relu = s.relu;
      step->scale = on(s.scale, device);
      step->shift = on(s.shift, device);
      step->dx = contribution(x);
      step->y = add(xs);
      steps.push_back(std::move(step));
    } else if (s.kind == PlanStep::Kind::Conv) {
      const Shape& w = s.weight_shape;
      if (!map || w.size() != 4 || s.groups < 1 || w[1] * s.groups != xs[1] ||
          w[0] % s.groups != 0 || s.dilation_h < 1 || s.dilation_w < 1 ||
          int64_t(s.weight.size()) != shape_numel(w) ||
          (!s.bias.empty() && int64_t(s.bias.size()) != w[0]))
        refuse(s, "input " + shape_str(xs) + " does not fit weight " + shape_str(w));
      kernels::Conv2dShape cs;
      cs.n = xs[0], cs.c_in = xs[1], cs.h = xs[2], cs.w = xs[3];
      cs.c_out = w[0], cs.kh = w[2], cs.kw = w[3];
      cs.stride = s.stride;
      cs.padding = s.padding;
      cs.groups = s.groups;
      cs.dilation_h = s.dilation_h;
      cs.dilation_w = s.dilation_w;
      if (cs.h_out() < 1 || cs.w_out() < 1) refuse(s, "kernel larger than the padded input");
      const Shape out{cs.n, cs.c_out, cs.h_out(), cs.w_out()};
      auto step = std::make_unique<ConvStep>();
      step->x = x;
      if (s.residual >= 0) {
        step->residual = v.at(size_t(s.residual));
        if (at(step->residual).shape != out)
          refuse(s, "residual " + shape_str(at(step->residual).shape) + " for output " +
                        shape_str(out));
      }
      // cuDNN's fused call takes a ReLU or nothing: a capped ReLU (ReLU6) is the conv
      // without it, then a clamp step.
      const bool capped = s.relu && std::isfinite(s.relu_max);
      const bool relu = s.relu && !capped;
      step->mask = relu;
      step->conv = make_conv(cs, s.weight.data(), s.bias.empty() ? nullptr : s.bias.data(),
                             s.residual >= 0, relu, stream);
      step->dx = contribution(x);
      // The gradient at the sum is also the residual's contribution, as it is: the step
      // always writes it into its scratch slot, which lives until the residual's producer.
      if (step->residual >= 0) step->scratch = contribution(step->residual);
      step->y = add(out);
      const int conv_y = step->y;
      steps.push_back(std::move(step));
      if (capped) {
        auto clamp = std::make_unique<ActStep>();
        clamp->x = conv_y;
        clamp->f.kind = kernels::Activation::Kind::ClampAffine;
        clamp->f.lo = 0.f, clamp->f.hi = s.relu_max;
        clamp->dx = contribution(conv_y);
        clamp->y = add(out);
        steps.push_back(std::move(clamp));
      }
    } else if (s.kind == PlanStep::Kind::MaxPool || s.kind == PlanStep::Kind::AvgPool) {
      if (!map) refuse(s, "pools " + shape_str(xs));
      const kernels::PoolGeometry geom =
          kernels::pool_geometry(xs[2], xs[3], s.kernel, s.stride, s.padding, s.ceil);
      if (geom.oh < 1 || geom.ow < 1 || 2 * s.padding > s.kernel) refuse(s, "window does not fit");
      // As every step: its input's gradient slot, then its output.
      const int dx = contribution(x), y = add({xs[0], xs[1], geom.oh, geom.ow});
      if (s.kind == PlanStep::Kind::MaxPool) {
        auto step = std::make_unique<MaxPoolStep>();
        step->geom = geom;
        step->x = x, step->dx = dx, step->y = y;
        step->argmax = Tensor::empty({act(y).numel()}, device, DType::I32);
        steps.push_back(std::move(step));
      } else {
        auto step = std::make_unique<WindowAvgPoolStep>();
        step->geom = geom;
        step->include_pad = s.include_pad;
        step->x = x, step->dx = dx, step->y = y;
        steps.push_back(std::move(step));
      }
    } else if (s.kind == PlanStep::Kind::Act) {
      auto step = std::make_unique<ActStep>();
      step->x = x;
      step->f = s.act;
      step->dx = contribution(x);
      step->y = add(xs);
      steps.push_back(std::move(step));
    } else if (s.kind == PlanStep::Kind::ChannelScale) {
      const int gate = v.at(size_t(s.gate));
      if (!map || at(gate).shape != Shape{xs[0], xs[1]})
        refuse(s, "gate " + shape_str(at(gate).shape) + " for " + shape_str(xs));
      auto step = std::make_unique<ChannelScaleStep>();
      step->x = x;
      step->gate = gate;
      step->dx = contribution(x);
      step->dgate = contribution(gate);
      step->y = add(xs);
      steps.push_back(std::move(step));
    } else if (s.kind == PlanStep::Kind::GlobalAvgPool) {
      if (!map) refuse(s, "pools " + shape_str(xs));
      auto step = std::make_unique<AvgPoolStep>();
      step->x = x;
      step->dx = contribution(x);
      step->y = add({xs[0], xs[1]});
      steps.push_back(std::move(step));
    } else {  // Linear
      const Shape& w = s.weight_shape;
      if (xs.size() != 2 || w.size() != 2 || w[1] != xs[1] ||
          int64_t(s.weight.size()) != shape_numel(w) ||
          (!s.bias.empty() && int64_t(s.bias.size()) != w[0]))
        refuse(s, "input " + shape_str(xs) + " does not fit weight " + shape_str(w));
      auto step = std::make_unique<LinearStep>();
      step->x = x;
      step->mask = s.relu;
      step->n = xs[0], step->in = w[1], step->out = w[0];
      step->weight = Tensor::from_vector(s.weight, w, device);
      if (!s.bias.empty()) step->bias = on(s.bias, device);
      step->dx = contribution(x);
      step->y = add({xs[0], w[0]});
      steps.push_back(std::move(step));
    }
    // Every step but Flatten (an alias, pushed above) makes a new value: its output.
    if (s.kind != PlanStep::Kind::Flatten) v.push_back(steps.back()->y);
    if (at(v.back()).shape != s.out)
      throw std::logic_error("FrozenGraphCuda: plan step gives " + shape_str(at(v.back()).shape) +
                             ", planned " + shape_str(s.out) + " (" + s.from + ")");
  }
  finish(v.at(size_t(plan.logits)));
}

void FrozenGraphCuda::State::finish(int logits_value) {
  if (at(logits_value).shape.size() != 2)
    throw std::invalid_argument("FrozenGraphCuda: logits must be [n, F]");
  logits = logits_value;
  logits_root = at(logits).root;
  if (logits_root == 0) throw std::invalid_argument("FrozenGraphCuda: the logits are the input");
  if (logits != logits_root) at(logits).data = ops::reshape(at(logits_root).data, at(logits).shape);
  size_t ws = 0;
  for (const auto& step : steps) ws = std::max(ws, step->workspace());
  workspace = Tensor::empty({int64_t(ws / sizeof(float)) + 1}, device);
  // Scratch where a step's output gradient is a sum or goes through a ReLU (a conv with a
  // residual has its slot already).
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& step = *steps[i];
    if (step.scratch < 0 && (step.mask || part_count(step.y) > 1)) {
      slots.push_back(GradSlot{act(step.y).numel(), int(i), int(i)});
      step.scratch = int(slots.size()) - 1;
    }
  }
  // Storage by liveness; slots read after the last step (the input's gradient) get their
  // own tensors, shaped as the input.
  const SlotStorage storage = plan_slot_storage(slots, steps.size());
  std::vector<Tensor> buffers;
  for (int64_t numel : storage.buffer_numel) buffers.push_back(Tensor::empty({numel}, device));
  for (size_t s = 0; s < slots.size(); ++s) {
    const int b = storage.buffer[s];
    slot_data.push_back(b < 0 ? Tensor::empty(values[0].shape, device) : buffers[size_t(b)]);
  }
  for (const auto& step : steps) {
    if (step->y == logits_root) step->parts.push_back(nullptr);
    for (int s : at(step->y).grads) step->parts.push_back(ptr(s));
    if (step->parts.empty()) throw std::logic_error("FrozenGraphCuda: a value nothing consumes");
  }
  const ValueInfo& input = at(0);
  if (input.grads.empty()) throw std::invalid_argument("FrozenGraphCuda: the input is not read");
  for (int s : input.grads) input_parts.push_back(ptr(s));
  dx = input.grads.size() == 1 ? slot_data[size_t(input.grads[0])]
                               : Tensor::empty(input.shape, device);
}

}  // namespace ipg
