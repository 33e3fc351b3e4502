// Inside FrozenGraph (engine/frozen_graph.cpp, frozen_graph_build.cpp): the values, the
// gradient slots, the step interface and the state the steps run over. Not part of the
// engine's API.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/frozen_graph.h"
#include "engine/gradient_slots.h"
#include "kernels/cpu/blocked.h"

namespace ipg {

namespace frozen_detail {

namespace kc = kernels::cpu;
using Value = FrozenGraph::Value;

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

}  // namespace frozen_detail

struct FrozenGraph::Step {
  Value y = kNone;    // the output
  bool mask = false;  // backward reads y's gradient through a ReLU (0 < y < mask_max)
  float mask_max = std::numeric_limits<float>::infinity();
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
  std::vector<frozen_detail::ValueInfo> values;
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<frozen_detail::Slot> slots;
  Value logits = kNone;
  Tensor workspace;
  Tensor dx;                              // the input gradient
  std::vector<const float*> input_parts;  // its parts (summed into dx when several)
  const float* root_grad = nullptr;       // dlogits during backward()
  bool ran_forward = false;

  frozen_detail::ValueInfo& at(Value v) {
    if (v < 0 || v >= static_cast<Value>(values.size()))
      throw std::logic_error("FrozenGraph: no value " + std::to_string(v));
    return values[static_cast<size_t>(v)];
  }
  // Storage for a value: shaped as it is when plain ([n, F] or [n, C, H, W]), flat when
  // blocked (its shape would misdescribe the memory order).
  static Tensor buffer(const kernels::cpu::ActShape& act, bool features) {
    if (features) return Tensor::empty({act.n, act.c});
    if (act.block == 1) return Tensor::empty({act.n, act.c, act.h, act.w});
    return Tensor::empty({act.numel()});
  }
  // The output of the step about to be added (steps.size()).
  Value add(const kernels::cpu::ActShape& act, bool features) {
    frozen_detail::ValueInfo info;
    info.act = act;
    info.features = features;
    info.producer = static_cast<int>(steps.size());
    info.data = buffer(act, features);
    values.push_back(std::move(info));
    return static_cast<Value>(values.size()) - 1;
  }
  int slot(int64_t numel, int born, int dies) {
    slots.push_back(frozen_detail::Slot{GradSlot{numel, born, dies}, Tensor()});
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
    kernels::cpu::sum_relu_mask(step.parts.data(), static_cast<int>(step.parts.size()),
                                step.mask ? in(step.y) : nullptr, step.mask_max,
                                ptr(step.scratch), at(step.y).act.numel());
    return ptr(step.scratch);
  }
};

}  // namespace ipg
