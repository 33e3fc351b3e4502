// The planner (plan.h): pattern matching over the trace in execution order.
//
// A fused step is a chain of trace nodes, each the only consumer of the one before
// (conv2d -> batch_norm -> add -> relu). The chain is matched at its first node and
// emitted at its last: by then every other operand (a residual computed after the main
// path, as in a ResNet block) has been lowered, so emitting in trace order keeps the
// steps in a valid order.
//
// This file: the walk, the chain bookkeeping and the dispatch by op; the lowerings are in
// plan_affine.cpp (per-channel arithmetic, batch norm, ReLU) and plan_layers.cpp
// (convolutions, linears, pooling, padding, reshapes).
#include "engine/plan.h"

#include <cmath>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/plan_internal.h"

namespace ipg {

namespace plan_detail {

Planner::Planner(const Graph& g) : g_(g) {
  const size_t nv = g.values.size();
  consumers_.assign(nv, {});
  live_.assign(g.nodes.size(), false);
  std::vector<bool> live_value(nv, false);
  live_value[size_t(g.output)] = true;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    if (!live_value[size_t(g.nodes[i].output)]) continue;
    live_[i] = true;
    for (int v : g.nodes[i].inputs)
      if (v >= 0) live_value[size_t(v)] = true;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (live_[i])
      for (int v : g.nodes[i].inputs)
        if (v >= 0) consumers_[size_t(v)].push_back(int(i));
  pv_.assign(nv, -1);
  pv_[size_t(g.input)] = 0;
  pad_.assign(nv, {-1, 0});
  squeezed_.assign(nv, false);
  done_.assign(g.nodes.size(), false);
}

Plan Planner::run() {
  plan_.input = g_.values[size_t(g_.input)].shape();
  if (plan_.input.size() != 4) throw Refused{"the input must be [n, C, H, W] images"};
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (!live_[i]) continue;
    const auto pending = tails_.find(int(i));
    if (pending != tails_.end()) {
      emit(pending->second);
      continue;
    }
    if (done_[i]) continue;
    start(int(i));
  }
  plan_.logits = pv_[size_t(g_.output)];
  if (plan_.logits < 0 || plan_.shape(plan_.logits).size() != 2)
    throw Refused{"the output is not a lowered [n, classes] value"};
  return std::move(plan_);
}

std::string Planner::where(int node) const {
  const Node& n = g_.nodes[size_t(node)];
  return "'" + n.name + "' (trace node " + std::to_string(node) + ", output " +
         shape_str(shape(n.output)) + ")";
}

int Planner::sole_consumer(int v) const {
  if (v == g_.output || consumers_[size_t(v)].size() != 1) return -1;
  const int c = consumers_[size_t(v)][0];
  return done_[size_t(c)] ? -1 : c;
}

std::vector<float> Planner::host(int v, int node_for_error) const {
  if (!g_.is_constant(v))
    throw Refused{where(node_for_error) + ": a weight computed from the input"};
  const Tensor& t = g_.values[size_t(v)];
  if (t.dtype() != DType::F32) throw Refused{where(node_for_error) + ": weights not float32"};
  return t.cpu().to_vector();
}

int Planner::lowered(int v, int node_for_error) const {
  if (squeezed(v))
    throw Refused{where(node_for_error) + ": reads a [n, C, 1, 1] value as a map (only 1x1 "
                  "convolutions, activations and a channel scale take one)"};
  return lowered_squeezed(v, node_for_error);
}

int Planner::lowered_squeezed(int v, int node_for_error) const {
  if (v < 0 || pv_[size_t(v)] < 0)
    throw Refused{where(node_for_error) + ": reads a value no step computes"};
  return pv_[size_t(v)];
}

void Planner::emit(Chain& c) {
  if (c.residual >= 0) c.step.residual = lowered(c.residual, producer(c.out));
  c.step.out = shape(c.out);
  if (c.squeeze) {
    c.step.out.resize(2);
    squeezed_[size_t(c.out)] = true;
  }
  plan_.steps.push_back(std::move(c.step));
  pv_[size_t(c.out)] = int(plan_.steps.size());
  tails_.erase(tails_.find(producer(c.out)));
}

void Planner::absorb(Chain& c, int i, const char* what) {
  done_[size_t(i)] = true;
  c.out = node(i).output;
  c.step.from += std::string("+") + what;
}

void Planner::finish(Chain c, int first) {
  if (producer(c.out) == first) {
    tails_[first] = std::move(c);
    emit(tails_[first]);
  } else {
    tails_[producer(c.out)] = std::move(c);
  }
}

void Planner::start(int i) {
  const Node& n = node(i);
  switch (n.op) {
    case Op::Conv2d: return conv(i);
    case Op::Linear: return linear(i);
    case Op::Mul:
      if (!g_.is_constant(n.inputs[0]) && !g_.is_constant(n.inputs[1])) return channel_scale(i);
      return affine(i);
    case Op::Relu: case Op::ScalarAffine:
      // On a map, per channel (the same affine step as a batch norm); on [n, k] values
      // and squeezed ones, an activation step.
      if (is_map(n.inputs[0]) && !squeezed(n.inputs[0])) return affine(i);
      return activation(i);
    case Op::BatchNorm: case Op::Add: case Op::Sub: case Op::Div:
      return affine(i);
    case Op::Unary: case Op::Clamp: case Op::HardSigmoid: return activation(i);
    case Op::MaxPool2d: case Op::AvgPool2d: return pool(i);
    case Op::GlobalAvgPool: {
      Chain c;
      c.step.kind = PlanStep::Kind::GlobalAvgPool;
      c.step.x = lowered(n.inputs[0], i);
      c.step.from = n.name;
      c.out = n.output;
      return finish(std::move(c), i);
    }
    case Op::ZeroPad2d: return zero_pad(i);
    case Op::Reshape: return reshape(i);
    default:
      throw Refused{where(i) + ": no fused lowering for this op"};
  }
}

std::pair<int, int> Planner::through_pad(int x) const {
  if (pad_[size_t(x)].first >= 0) return pad_[size_t(x)];
  return {x, 0};
}

}  // namespace plan_detail

using plan_detail::Planner;
using plan_detail::Refused;

std::string Plan::str() const {
  static const char* kNames[] = {"affine", "conv", "max_pool", "global_avg_pool", "flatten",
                                 "linear", "avg_pool", "act", "channel_scale"};
  std::ostringstream os;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PlanStep& s = steps[i];
    os << "v" << i + 1 << " = " << kNames[int(s.kind)] << "(v" << s.x;
    if (s.residual >= 0) os << ", +v" << s.residual;
    if (s.gate >= 0) os << ", *v" << s.gate;
    os << ")";
    if (s.groups != 1) os << " groups " << s.groups;
    if (s.ceil) os << " ceil";
    if (s.kind == PlanStep::Kind::AvgPool && !s.include_pad) os << " exclude_pad";
    if (s.dilation_h != 1 || s.dilation_w != 1)
      os << " dilation " << s.dilation_h << "x" << s.dilation_w;
    os << (s.relu ? " relu" : "");
    if (s.relu && std::isfinite(s.relu_max)) os << " max " << s.relu_max;
    os << " " << shape_str(s.out) << "  <- " << s.from << "\n";
  }
  return os.str();
}

Plan Plan::with_batch(int64_t n) const {
  Plan p = *this;
  p.input[0] = n;
  for (PlanStep& s : p.steps) s.out[0] = n;
  return p;
}

std::optional<Plan> make_plan(const trace::Graph& g, std::string* why) {
  try {
    return Planner(g).run();
  } catch (const Refused& r) {
    if (why) *why = r.why;
    return std::nullopt;
  }
}

}  // namespace ipg
