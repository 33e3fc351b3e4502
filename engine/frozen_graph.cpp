// FrozenGraph: values, steps and the gradient plumbing between them (frozen_graph.h).
//
// Gradients. Every step writes, for each of its inputs, that input's gradient from this
// step alone into a buffer of its own (a "contribution"; a residual add contributes the
// gradient at its output itself, with no copy). Steps run backward in reverse order, so
// all consumers of a value have written their contributions before its producer runs;
// the producer then sums them, fused with the mask of its own ReLU (sum_relu_mask), in
// one pass. Nothing is zeroed and nothing accumulates in place.
#include "engine/frozen_graph.h"

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

#include "engine/error.h"
#include "engine/gradient_slots.h"
#include "kernels/cpu/blocked.h"
#include "kernels/cpu/fused_conv.h"
#include "kernels/cpu/gemm.h"

namespace ipg {

namespace kc = kernels::cpu;
using Value = FrozenGraph::Value;

namespace {

struct ValueInfo {
  kc::ActShape act;        // block: the layout
  bool features = false;   // [n, F] rather than a map
  int producer = -1;       // index of the step that computes it (-1: the input)
  Tensor data;             // the forward values (the input: the caller's tensor)
  std::vector<int> grads;  // slots of the consumers' contributions, in graph order
};

// A gradient buffer (engine/gradient_slots.h) and its storage, set by finish().
struct Slot {
  GradSlot span;
  Tensor t;
};

}  // namespace

struct FrozenGraph::Step {
  Value y = kNone;    // the output
  bool mask = false;  // backward reads y's gradient through a ReLU (y > 0)
  int scratch = -1;   // slot for y's summed gradient, decided by finish()
  // Where y's gradient parts are, set by finish(); the first is dlogits (set by each
  // backward()) when y is the logits.
  std::vector<const float*> parts;
  virtual ~Step() = default;
  virtual void forward(State& g) = 0;
  virtual void backward(State& g) = 0;
  virtual size_t workspace() const { return 0; }
};

struct FrozenGraph::State {
  std::vector<ValueInfo> values;
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<Slot> slots;
  Value logits = kNone;
  Tensor workspace;
  Tensor dx;                              // the input gradient
  std::vector<const float*> input_parts;  // its parts (summed into dx when several)
  const float* root_grad = nullptr;       // dlogits during backward()
  bool ran_forward = false;

  ValueInfo& at(Value v) {
    if (v < 0 || v >= static_cast<Value>(values.size()))
      throw std::logic_error("FrozenGraph: no value " + std::to_string(v));
    return values[static_cast<size_t>(v)];
  }
  // Storage for a value: shaped as it is when plain ([n, F] or [n, C, H, W]), flat when
  // blocked (its shape would misdescribe the memory order).
  static Tensor buffer(const kc::ActShape& act, bool features) {
    if (features) return Tensor::empty({act.n, act.c});
    if (act.block == 1) return Tensor::empty({act.n, act.c, act.h, act.w});
    return Tensor::empty({act.numel()});
  }
  // The output of the step about to be added (steps.size()).
  Value add(const kc::ActShape& act, bool features) {
    ValueInfo info;
    info.act = act;
    info.features = features;
    info.producer = static_cast<int>(steps.size());
    info.data = buffer(act, features);
    values.push_back(std::move(info));
    return static_cast<Value>(values.size()) - 1;
  }
  int slot(int64_t numel, int born, int dies) {
    slots.push_back(Slot{GradSlot{numel, born, dies}, Tensor()});
    return static_cast<int>(slots.size()) - 1;
  }
  // The slot where the step about to be added writes its part of v's gradient.
  int contribution(Value v) {
    const int s = slot(at(v).act.numel(), static_cast<int>(steps.size()), at(v).producer);
    at(v).grads.push_back(s);
    return s;
  }
  float* ptr(int s) { return slots[static_cast<size_t>(s)].t.data(); }
  const float* in(Value v) { return at(v).data.data(); }
  float* out(Value v) { return at(v).data.data(); }
  // How many gradient buffers reach v.
  size_t part_count(Value v) { return at(v).grads.size() + (v == logits ? 1 : 0); }
  // The gradient at the output of `step`: the sum of its contributions, through the
  // step's ReLU when it masks; the lone contribution itself when there is nothing to
  // sum or mask and no scratch slot, else written into the step's scratch slot (a conv
  // with a residual always has one: its gradient is also the residual's contribution).
  const float* grad(Step& step) {
    if (step.y == logits) step.parts[0] = root_grad;
    if (step.scratch < 0) return step.parts[0];
    kc::sum_relu_mask(step.parts.data(), static_cast<int>(step.parts.size()),
                      step.mask ? in(step.y) : nullptr, ptr(step.scratch), at(step.y).act.numel());
    return ptr(step.scratch);
  }
};

namespace {

using State = FrozenGraph::State;
using Step = FrozenGraph::Step;

std::vector<float> host(const Tensor& t) { return t.cpu().to_vector(); }

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

// Evaluation-mode batch norm as y = x * scale + shift.
void bn_affine(const nn::BatchNorm2d& bn, std::vector<float>& scale, std::vector<float>& shift) {
  const std::vector<float> gamma = host(bn.weight), beta = host(bn.bias),
                           mean = host(bn.running_mean), var = host(bn.running_var);
  scale.resize(gamma.size());
  shift.resize(gamma.size());
  for (size_t c = 0; c < gamma.size(); ++c) {
    const double s = gamma[c] / std::sqrt(static_cast<double>(var[c]) + bn.eps);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(beta[c] - mean[c] * s);
  }
}

}  // namespace

FrozenGraph::FrozenGraph(const Shape& input) : st_(std::make_unique<State>()) {
  if (input.size() != 4 || shape_numel(input) <= 0)
    throw std::invalid_argument("FrozenGraph: input must be [n, C, H, W], got " + shape_str(input));
  kc::ActShape act{input[0], input[1], input[2], input[3], 1};
  ValueInfo info;
  info.act = act;
  st_->values.push_back(std::move(info));  // data: the caller's tensor, set by forward()
}

FrozenGraph::~FrozenGraph() = default;

Shape FrozenGraph::shape(Value v) const {
  const ValueInfo& info = st_->at(v);
  if (info.features) return {info.act.n, info.act.c};
  return {info.act.n, info.act.c, info.act.h, info.act.w};
}

Value FrozenGraph::normalize(Value x, const std::vector<float>& mean,
                             const std::vector<float>& std) {
  const kc::ActShape act = st_->at(x).act;
  auto step = std::make_unique<AffineStep>();
  step->x = x;
  step->relu = false;
  step->scale.assign(static_cast<size_t>(act.c), 1.f);
  step->shift.assign(static_cast<size_t>(act.c), 0.f);
  for (int64_t c = 0; c < act.c; ++c) {
    const float m = mean.empty() ? 0.f : mean.at(static_cast<size_t>(c));
    const float s = std.empty() ? 1.f : std.at(static_cast<size_t>(c));
    step->scale[c] = 1.f / s;
    step->shift[c] = -m / s;
  }
  step->dx = st_->contribution(x);
  step->y = st_->add(act, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::conv(Value x, const nn::Conv2d& conv, const nn::BatchNorm2d* bn, bool relu,
                        Value residual, int padding) {
  // Fold the batch norm: bn(conv(x) + b) = conv_{w*scale}(x) + (b*scale + shift).
  std::vector<float> weight = host(conv.weight), bias;
  if (conv.bias) bias = host(*conv.bias);
  if (bn) {
    std::vector<float> scale, shift;
    bn_affine(*bn, scale, shift);
    const size_t per = weight.size() / scale.size();
    for (size_t o = 0; o < scale.size(); ++o)
      for (size_t i = 0; i < per; ++i) weight[o * per + i] *= scale[o];
    if (bias.empty()) bias.assign(scale.size(), 0.f);
    for (size_t o = 0; o < scale.size(); ++o) bias[o] = bias[o] * scale[o] + shift[o];
  }
  return this->conv(x, weight, conv.weight.shape(), bias, conv.stride,
                    padding < 0 ? conv.padding : padding, relu, residual);
}

Value FrozenGraph::conv(Value x, const std::vector<float>& weight, const Shape& w,
                        const std::vector<float>& bias, int stride, int padding, bool relu,
                        Value residual, int groups, int dilation_h, int dilation_w) {
  kc::ActShape in = st_->at(x).act;
  if (groups < 1 || dilation_h < 1 || dilation_w < 1)
    throw std::invalid_argument("FrozenGraph::conv: groups " + std::to_string(groups) +
                                ", dilation " + std::to_string(dilation_h) + "x" +
                                std::to_string(dilation_w));
  if (w.size() != 4 || st_->at(x).features || in.c != w[1] * groups || w[0] % groups != 0 ||
      int64_t(weight.size()) != shape_numel(w) || (!bias.empty() && int64_t(bias.size()) != w[0]))
    throw std::invalid_argument("FrozenGraph::conv: input " + shape_str(shape(x)) +
                                " does not fit weight " + shape_str(w));
  if (in.block != kc::channel_block(in.c)) {  // the input image with 16k channels
    auto step = std::make_unique<LayoutStep>();
    step->x = x;
    step->to_plain = false;
    step->dx = st_->contribution(x);
    in.block = kc::channel_block(in.c);
    x = step->y = st_->add(in, false);
    st_->steps.push_back(std::move(step));
  }
  kernels::Conv2dShape s;
  s.n = in.n, s.c_in = in.c, s.h = in.h, s.w = in.w;
  s.c_out = w[0], s.kh = w[2], s.kw = w[3];
  s.stride = stride;
  s.padding = padding;
  s.groups = groups;
  s.dilation_h = dilation_h;
  s.dilation_w = dilation_w;
  if (s.h_out() < 1 || s.w_out() < 1)
    throw std::invalid_argument("FrozenGraph::conv: kernel larger than the padded input");
  const kc::ActShape out{s.n, s.c_out, s.h_out(), s.w_out(), kc::channel_block(s.c_out)};
  if (residual != kNone) {
    const kc::ActShape& r = st_->at(residual).act;
    if (r.n != out.n || r.c != out.c || r.h != out.h || r.w != out.w || r.block != out.block)
      throw std::invalid_argument("FrozenGraph::conv: residual " + shape_str(shape(residual)) +
                                  " does not match the output");
  }
  auto step = std::make_unique<ConvStep>();
  step->x = x;
  step->residual = residual;
  step->mask = relu;
  step->conv = std::make_unique<kc::FusedConv>(
      s, weight.data(), bias.empty() ? nullptr : bias.data(), residual != kNone, relu);
  step->dx = st_->contribution(x);
  if (residual != kNone) {
    // The gradient at the sum is also the residual's contribution, as it is: the step
    // always writes it into its scratch slot, which lives until the residual's producer.
    step->scratch = st_->contribution(residual);
  }
  step->y = st_->add(out, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::batch_norm(Value x, const nn::BatchNorm2d& bn, bool relu) {
  if (bn.running_mean.numel() != st_->at(x).act.c)
    throw std::invalid_argument("FrozenGraph::batch_norm: channel count differs");
  std::vector<float> scale, shift;
  bn_affine(bn, scale, shift);
  return affine(x, scale, shift, relu);
}

Value FrozenGraph::affine(Value x, const std::vector<float>& scale,
                          const std::vector<float>& shift, bool relu) {
  const kc::ActShape act = st_->at(x).act;
  if (st_->at(x).features || int64_t(scale.size()) != act.c || shift.size() != scale.size())
    throw std::invalid_argument("FrozenGraph::affine: " + std::to_string(scale.size()) +
                                " channels for " + shape_str(shape(x)));
  auto step = std::make_unique<AffineStep>();
  step->x = x;
  step->relu = relu;
  step->scale = scale;
  step->shift = shift;
  step->dx = st_->contribution(x);
  step->y = st_->add(act, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::max_pool(Value x, int kernel, int stride, int padding) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<MaxPoolStep>();
  step->geom = kernels::PoolGeometry{in.h,
                                     in.w,
                                     kernels::pool_out_size(in.h, kernel, stride, padding),
                                     kernels::pool_out_size(in.w, kernel, stride, padding),
                                     kernel,
                                     stride,
                                     padding};
  if (step->geom.oh < 1 || step->geom.ow < 1 || 2 * padding > kernel)
    throw std::invalid_argument("FrozenGraph::max_pool: window does not fit");
  step->x = x;
  step->dx = st_->contribution(x);
  const kc::ActShape out{in.n, in.c, step->geom.oh, step->geom.ow, in.block};
  step->y = st_->add(out, false);
  if (out.block == 1) step->argmax = Tensor::empty({out.numel()}, Device::cpu(), DType::I32);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::global_avg_pool(Value x) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<AvgPoolStep>();
  step->x = x;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, in.c, 1, 1, 1}, true);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::flatten(Value x) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<LayoutStep>();
  step->x = x;
  step->to_plain = true;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, in.c * in.h * in.w, 1, 1, 1}, true);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::linear(Value x, const nn::Linear& layer, bool relu) {
  return linear(x, host(layer.weight), layer.weight.shape(),
                layer.bias ? host(*layer.bias) : std::vector<float>(), relu);
}

Value FrozenGraph::linear(Value x, const std::vector<float>& weight, const Shape& w,
                          const std::vector<float>& bias, bool relu) {
  const kc::ActShape in = st_->at(x).act;
  if (w.size() != 2 || !st_->at(x).features || in.c != w[1] ||
      int64_t(weight.size()) != shape_numel(w) || (!bias.empty() && int64_t(bias.size()) != w[0]))
    throw std::invalid_argument("FrozenGraph::linear: input " + shape_str(shape(x)) +
                                " does not fit weight " + shape_str(w));
  auto step = std::make_unique<LinearStep>();
  step->x = x;
  step->mask = relu;
  step->n = in.n, step->in = w[1], step->out = w[0];
  step->weight = weight;
  step->bias = bias;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, w[0], 1, 1, 1}, true);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

FrozenGraph::FrozenGraph(const Plan& plan) : FrozenGraph(plan.input) {
  std::vector<Value> v{input()};  // plan value -> graph value
  for (const PlanStep& s : plan.steps) {
    const Value x = v.at(size_t(s.x));
    const Value r = s.residual >= 0 ? v.at(size_t(s.residual)) : kNone;
    Value y = kNone;
    switch (s.kind) {
      case PlanStep::Kind::Affine: y = affine(x, s.scale, s.shift, s.relu); break;
      case PlanStep::Kind::Conv:
        y = conv(x, s.weight, s.weight_shape, s.bias, s.stride, s.padding, s.relu, r, s.groups,
                 s.dilation_h, s.dilation_w);
        break;
      case PlanStep::Kind::MaxPool: y = max_pool(x, s.kernel, s.stride, s.padding); break;
      case PlanStep::Kind::GlobalAvgPool: y = global_avg_pool(x); break;
      case PlanStep::Kind::Flatten: y = flatten(x); break;
      case PlanStep::Kind::Linear: y = linear(x, s.weight, s.weight_shape, s.bias, s.relu); break;
    }
    if (shape(y) != s.out)
      throw std::logic_error("FrozenGraph: plan step gives " + shape_str(shape(y)) + ", planned " +
                             shape_str(s.out) + " (" + s.from + ")");
    v.push_back(y);
  }
  finish(v.at(size_t(plan.logits)));
}

void FrozenGraph::finish(Value logits) {
  State& g = *st_;
  if (g.logits != kNone) throw std::logic_error("FrozenGraph::finish called twice");
  if (!g.at(logits).features)
    throw std::invalid_argument("FrozenGraph::finish: logits must be [n, F]");
  g.logits = logits;
  size_t ws = 0;
  for (const auto& step : g.steps) ws = std::max(ws, step->workspace());
  g.workspace = Tensor::empty({static_cast<int64_t>((ws + 3) / 4) + 16});
  // Scratch where a step's output gradient is a sum or goes through a ReLU (a conv with a
  // residual has its slot already).
  for (size_t i = 0; i < g.steps.size(); ++i) {
    Step& step = *g.steps[i];
    if (step.scratch < 0 && (step.mask || g.part_count(step.y) > 1))
      step.scratch = g.slot(g.at(step.y).act.numel(), static_cast<int>(i), static_cast<int>(i));
  }
  // Storage by liveness; slots read after the last step (the input's gradient) get their
  // own shaped tensors.
  std::vector<GradSlot> spans;
  for (const Slot& slot : g.slots) spans.push_back(slot.span);
  const SlotStorage storage = plan_slot_storage(spans, g.steps.size());
  std::vector<Tensor> buffers;
  for (int64_t numel : storage.buffer_numel) buffers.push_back(Tensor::empty({numel}));
  for (size_t s = 0; s < g.slots.size(); ++s) {
    const int b = storage.buffer[s];
    g.slots[s].t = b < 0 ? State::buffer(g.at(0).act, false) : buffers[size_t(b)];
  }
  for (const auto& step : g.steps) {
    if (step->y == logits) step->parts.push_back(nullptr);
    for (int s : g.at(step->y).grads) step->parts.push_back(g.ptr(s));
    if (step->parts.empty()) throw std::logic_error("FrozenGraph: a value nothing consumes");
  }
  const ValueInfo& input = g.at(0);
  for (int s : input.grads) g.input_parts.push_back(g.ptr(s));
  g.dx = input.grads.size() == 1 ? g.slots[static_cast<size_t>(input.grads[0])].t
                                 : State::buffer(input.act, false);
}

const Tensor& FrozenGraph::forward(const Tensor& x) {
  State& g = *st_;
  if (g.logits == kNone) throw std::logic_error("FrozenGraph::forward before finish()");
  if (!x.device().is_cpu() || x.dtype() != DType::F32 || x.shape() != shape(0))
    throw std::invalid_argument("FrozenGraph::forward: input must be a CPU float32 " +
                                shape_str(shape(0)) + ", got " + shape_str(x.shape()) + " on " +
                                x.device().str());
  g.values[0].data = x;
  for (const auto& s : g.steps) s->forward(g);
  g.ran_forward = true;
  return g.values[static_cast<size_t>(g.logits)].data;
}

void FrozenGraph::forget_forward() {
  st_->ran_forward = false;
  st_->values[0].data = Tensor();
}

const Tensor& FrozenGraph::backward(const Tensor& dlogits) {
  State& g = *st_;
  if (!g.ran_forward) throw std::logic_error("FrozenGraph::backward before forward()");
  if (!dlogits.device().is_cpu() || dlogits.dtype() != DType::F32 ||
      dlogits.numel() != g.at(g.logits).act.numel())
    throw std::invalid_argument("FrozenGraph::backward: gradient must be a CPU float32 " +
                                shape_str(shape(g.logits)));
  g.root_grad = dlogits.data();
  for (auto it = g.steps.rbegin(); it != g.steps.rend(); ++it) (*it)->backward(g);
  if (g.input_parts.size() > 1)
    kc::sum_relu_mask(g.input_parts.data(), static_cast<int>(g.input_parts.size()), nullptr,
                      g.dx.data(), g.at(0).act.numel());
  g.root_grad = nullptr;
  return g.dx;
}

FrozenGraph::Memory FrozenGraph::memory() const {
  Memory m;
  m.workspace = st_->workspace.defined() ? st_->workspace.nbytes() : 0;
  for (size_t v = 1; v < st_->values.size(); ++v) m.values += st_->values[v].data.nbytes();
  std::set<const void*> seen;  // slots share storage
  for (const Slot& s : st_->slots)
    if (s.t.defined() && seen.insert(s.t.raw()).second) m.gradients += s.t.nbytes();
  if (st_->at(0).grads.size() > 1) m.gradients += st_->dx.nbytes();
  return m;
}

}  // namespace ipg
