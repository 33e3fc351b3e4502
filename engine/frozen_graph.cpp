// FrozenGraph (frozen_graph.h): construction, lowering a Plan step by step, and the
// gradient plumbing between the steps: finish() lays out the gradient buffers, forward()
// and backward() run the steps. The builders of single steps are in
// frozen_graph_build.cpp, the step kinds in frozen_graph_steps.h.
//
// Gradients. Every step writes, for each of its inputs, that input's gradient from this
// step alone into a buffer of its own (a "contribution"; a residual add contributes the
// gradient at its output itself, with no copy). Steps run backward in reverse order, so
// all consumers of a value have written their contributions before its producer runs;
// the producer then sums them, fused with the mask of its own ReLU (sum_relu_mask), in
// one pass. Nothing is zeroed and nothing accumulates in place.
#include "engine/frozen_graph.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/frozen_graph_internal.h"
#include "engine/gradient_slots.h"
#include "kernels/cpu/blocked.h"

namespace ipg {

using namespace frozen_detail;

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
                 s.dilation_h, s.dilation_w, s.relu_max);
        break;
      case PlanStep::Kind::MaxPool: y = max_pool(x, s.kernel, s.stride, s.padding, s.ceil); break;
      case PlanStep::Kind::GlobalAvgPool: y = global_avg_pool(x); break;
      case PlanStep::Kind::AvgPool:
        y = avg_pool(x, s.kernel, s.stride, s.padding, s.include_pad, s.ceil);
        break;
      case PlanStep::Kind::Flatten: y = flatten(x); break;
      case PlanStep::Kind::Linear: y = linear(x, s.weight, s.weight_shape, s.bias, s.relu); break;
      case PlanStep::Kind::Act: y = activation(x, s.act); break;
      case PlanStep::Kind::ChannelScale: y = channel_scale(x, v.at(size_t(s.gate))); break;
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
    kc::sum_relu_mask(g.input_parts.data(), static_cast<int>(g.input_parts.size()), nullptr, 0.f,
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
