// FrozenGraphCuda: a plan's steps on CUDA and the gradient plumbing between them
// (frozen_graph_cuda.h), the scheme of the CPU lowering (frozen_graph.cpp):
//
// Gradients. Every step writes, for each of its inputs, that input's gradient from this
// step alone into a buffer of its own (a "contribution"; a residual add contributes the
// gradient at its output itself, with no copy). Steps run backward in reverse order, so
// all consumers of a value have written their contributions before its producer runs;
// the producer then sums them, fused with the mask of its own ReLU (sum_relu_mask), in
// one kernel. Buffers are shared by liveness (engine/gradient_slots.h).
//
// Values. Every map is NCHW, so a flatten is an alias: a value with the storage and the
// gradient parts of the value it flattens (its "root"), and no step.
#include "engine/frozen_graph_cuda.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "engine/dispatch.h"
#include "engine/gradient_slots.h"
#include "engine/ops/view.h"
#include "kernels/cuda/blocked.h"
#include "kernels/cuda/fused_conv.h"
#include "kernels/cuda/gemm.h"

namespace ipg {

namespace kc = kernels::cuda;
using kernels::ActShape;

namespace {

struct ValueInfo {
  Shape shape;        // [n, C, H, W] or [n, F]
  ActShape act;       // the same as a plain map ([n, F] as F channels of 1 x 1)
  int root = 0;       // the value whose storage and gradient it shares (itself unless an alias)
  int producer = -1;  // index of the step that computes its root (-1: the input)
  Tensor data;        // the forward values (the input: the caller's tensor; an alias
                      // that is the logits: a view of its root)
  std::vector<int> grads;  // roots only: slots of the consumers' contributions
};

ActShape act_of(const Shape& s) {
  if (s.size() == 2) return ActShape{s[0], s[1], 1, 1, 1};
  return ActShape{s[0], s[1], s[2], s[3], 1};
}

}  // namespace

struct FrozenGraphCuda::Step {
  int y = 0;                        // the output (a root)
  bool mask = false;                // backward reads y's gradient through a ReLU (y > 0)
  int scratch = -1;                 // slot for y's summed gradient
  std::vector<const float*> parts;  // where y's gradient parts are (the first is dlogits
                                    // when y is the logits' root, set by each backward())
  virtual ~Step() = default;
  virtual void forward(State& g) = 0;
  virtual void backward(State& g) = 0;
  virtual size_t workspace() const { return 0; }
};

struct FrozenGraphCuda::State {
  Device device;
  cudaStream_t stream = nullptr;
  std::vector<ValueInfo> values;
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<GradSlot> slots;
  std::vector<Tensor> slot_data;  // per slot, set by finish()
  int logits = -1, logits_root = -1;
  Tensor workspace;
  Tensor dx;                              // the input gradient
  std::vector<const float*> input_parts;  // its parts (summed into dx when several)
  const float* root_grad = nullptr;       // dlogits during backward()
  bool ran_forward = false;

  ValueInfo& at(int v) {
    if (v < 0 || v >= int(values.size()))
      throw std::logic_error("FrozenGraphCuda: no value " + std::to_string(v));
    return values[size_t(v)];
  }
  // The output of the step about to be added (steps.size()).
  int add(const Shape& shape) {
    ValueInfo info;
    info.shape = shape;
    info.act = act_of(shape);
    info.root = int(values.size());
    info.producer = int(steps.size());
    // Zeros, not whatever the allocator held: a fused conv without a residual passes its
    // own output as cuDNN's z with alpha2 = 0, and 0 * NaN would be NaN if cuDNN read it
    // (its documentation does not say it does not). One memset when the plan is built.
    info.data = Tensor::zeros(shape, device);
    values.push_back(std::move(info));
    return int(values.size()) - 1;
  }
  // x under another shape, same elements.
  int alias(int x, const Shape& shape) {
    ValueInfo info;
    info.shape = shape;
    info.act = act_of(shape);
    info.root = at(x).root;
    info.producer = at(info.root).producer;
    values.push_back(std::move(info));
    return int(values.size()) - 1;
  }
  // The slot where the step about to be added writes its part of v's gradient.
  int contribution(int v) {
    ValueInfo& root = at(at(v).root);
    slots.push_back(GradSlot{root.act.numel(), int(steps.size()), root.producer});
    root.grads.push_back(int(slots.size()) - 1);
    return int(slots.size()) - 1;
  }
  float* ptr(int s) { return slot_data[size_t(s)].data(); }
  const float* in(int v) { return values[size_t(values[size_t(v)].root)].data.data(); }
  float* out(int v) { return values[size_t(v)].data.data(); }
  const ActShape& act(int v) { return values[size_t(v)].act; }
  // How many gradient buffers reach root value v.
  size_t part_count(int v) { return at(v).grads.size() + (v == logits_root ? 1 : 0); }
  // The gradient at the output of `step`: the sum of its parts, through the step's ReLU
  // when it masks; the lone part itself when there is nothing to sum or mask and no
  // scratch slot (a conv with a residual always has one: its gradient is also the
  // residual's contribution).
  const float* grad(Step& step) {
    if (step.y == logits_root) step.parts[0] = root_grad;
    if (step.scratch < 0) return step.parts[0];
    kc::sum_relu_mask(step.parts.data(), int(step.parts.size()), step.mask ? in(step.y) : nullptr,
                      ptr(step.scratch), act(step.y).numel(), stream);
    return ptr(step.scratch);
  }
  void lower(const Plan& plan);
  void finish(int logits_value);
};

namespace {

using State = FrozenGraphCuda::State;
using Step = FrozenGraphCuda::Step;

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
      step->mask = s.relu;
      step->conv = std::make_unique<kc::FusedConv>(cs, s.weight.data(),
                                                   s.bias.empty() ? nullptr : s.bias.data(),
                                                   s.residual >= 0, s.relu, stream);
      step->dx = contribution(x);
      // The gradient at the sum is also the residual's contribution, as it is: the step
      // always writes it into its scratch slot, which lives until the residual's producer.
      if (step->residual >= 0) step->scratch = contribution(step->residual);
      step->y = add(out);
      steps.push_back(std::move(step));
    } else if (s.kind == PlanStep::Kind::MaxPool) {
      if (!map) refuse(s, "pools " + shape_str(xs));
      auto step = std::make_unique<MaxPoolStep>();
      const int64_t oh = kernels::pool_out_size(xs[2], s.kernel, s.stride, s.padding),
                    ow = kernels::pool_out_size(xs[3], s.kernel, s.stride, s.padding);
      step->geom = kernels::PoolGeometry{xs[2], xs[3], oh, ow, s.kernel, s.stride, s.padding};
      if (step->geom.oh < 1 || step->geom.ow < 1 || 2 * s.padding > s.kernel)
        refuse(s, "window does not fit");
      step->x = x;
      step->dx = contribution(x);
      step->y = add({xs[0], xs[1], step->geom.oh, step->geom.ow});
      step->argmax = Tensor::empty({act(step->y).numel()}, device, DType::I32);
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

FrozenGraphCuda::FrozenGraphCuda(const Plan& plan, Device device) : st_(std::make_unique<State>()) {
  if (!device.is_cuda())
    throw std::invalid_argument("FrozenGraphCuda: needs a CUDA device, got " + device.str());
  st_->device = device;
  st_->stream = detail::cuda_stream(device);  // makes the device current
  st_->lower(plan);
}

FrozenGraphCuda::~FrozenGraphCuda() = default;

Device FrozenGraphCuda::device() const { return st_->device; }

const Shape& FrozenGraphCuda::input_shape() const { return st_->values[0].shape; }

const Tensor& FrozenGraphCuda::forward(const Tensor& x) {
  State& g = *st_;
  if (x.device() != g.device || x.dtype() != DType::F32 || x.shape() != input_shape())
    throw std::invalid_argument("FrozenGraphCuda::forward: input must be a float32 " +
                                shape_str(input_shape()) + " on " + g.device.str() + ", got " +
                                shape_str(x.shape()) + " on " + x.device().str());
  g.values[0].data = x;
  for (const auto& s : g.steps) s->forward(g);
  g.ran_forward = true;
  return g.values[size_t(g.logits)].data;
}

void FrozenGraphCuda::forget_forward() {
  st_->ran_forward = false;
  st_->values[0].data = Tensor();
}

const Tensor& FrozenGraphCuda::backward(const Tensor& dlogits) {
  State& g = *st_;
  if (!g.ran_forward) throw std::logic_error("FrozenGraphCuda::backward before forward()");
  const Shape& ls = g.values[size_t(g.logits)].shape;
  if (dlogits.device() != g.device || dlogits.dtype() != DType::F32 ||
      dlogits.numel() != shape_numel(ls))
    throw std::invalid_argument("FrozenGraphCuda::backward: gradient must be a float32 " +
                                shape_str(ls) + " on " + g.device.str());
  g.root_grad = dlogits.data();
  for (auto it = g.steps.rbegin(); it != g.steps.rend(); ++it) (*it)->backward(g);
  if (g.input_parts.size() > 1)
    kc::sum_relu_mask(g.input_parts.data(), int(g.input_parts.size()), nullptr, g.dx.data(),
                      g.dx.numel(), g.stream);
  g.root_grad = nullptr;
  return g.dx;
}

FrozenGraphCuda::Memory FrozenGraphCuda::memory() const {
  Memory m;
  m.workspace = st_->workspace.nbytes();
  for (size_t v = 1; v < st_->values.size(); ++v)
    if (st_->values[v].root == int(v)) m.values += st_->values[v].data.nbytes();
  std::set<const void*> seen;  // slots share storage
  for (const Tensor& t : st_->slot_data)
    if (seen.insert(t.raw()).second) m.gradients += t.nbytes();
  if (st_->input_parts.size() > 1) m.gradients += st_->dx.nbytes();
  return m;
}

}  // namespace ipg
