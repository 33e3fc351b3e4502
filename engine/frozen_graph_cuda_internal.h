// Inside FrozenGraphCuda (engine/frozen_graph_cuda.cpp, frozen_graph_cuda_lower.cpp): the
// values, the step interface and the state the steps run over. Not part of the engine's
// API. Only in builds with the CUDA backend (IPG_HAS_CUDA).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/frozen_graph_cuda.h"
#include "engine/gradient_slots.h"
#include "kernels/cuda/blocked.h"

namespace ipg {

namespace frozen_cuda_detail {

using kernels::ActShape;

struct ValueInfo {
  Shape shape;        // [n, C, H, W] or [n, F]
  ActShape act;       // the same as a plain map ([n, F] as F channels of 1 x 1)
  int root = 0;       // the value whose storage and gradient it shares (itself unless an alias)
  int producer = -1;  // index of the step that computes its root (-1: the input)
  Tensor data;        // the forward values (the input: the caller's tensor; an alias
                      // that is the logits: a view of its root)
  std::vector<int> grads;  // roots only: slots of the consumers' contributions
};

inline ActShape act_of(const Shape& s) {
  if (s.size() == 2) return ActShape{s[0], s[1], 1, 1, 1};
  return ActShape{s[0], s[1], s[2], s[3], 1};
}

}  // namespace frozen_cuda_detail

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
  std::vector<frozen_cuda_detail::ValueInfo> values;
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<GradSlot> slots;
  std::vector<Tensor> slot_data;  // per slot, set by finish()
  int logits = -1, logits_root = -1;
  Tensor workspace;
  Tensor dx;                              // the input gradient
  std::vector<const float*> input_parts;  // its parts (summed into dx when several)
  const float* root_grad = nullptr;       // dlogits during backward()
  bool ran_forward = false;

  frozen_cuda_detail::ValueInfo& at(int v) {
    if (v < 0 || v >= int(values.size()))
      throw std::logic_error("FrozenGraphCuda: no value " + std::to_string(v));
    return values[size_t(v)];
  }
  // The output of the step about to be added (steps.size()).
  int add(const Shape& shape) {
    frozen_cuda_detail::ValueInfo info;
    info.shape = shape;
    info.act = frozen_cuda_detail::act_of(shape);
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
    frozen_cuda_detail::ValueInfo info;
    info.shape = shape;
    info.act = frozen_cuda_detail::act_of(shape);
    info.root = at(x).root;
    info.producer = at(info.root).producer;
    values.push_back(std::move(info));
    return int(values.size()) - 1;
  }
  // The slot where the step about to be added writes its part of v's gradient.
  int contribution(int v) {
    frozen_cuda_detail::ValueInfo& root = at(at(v).root);
    slots.push_back(GradSlot{root.act.numel(), int(steps.size()), root.producer});
    root.grads.push_back(int(slots.size()) - 1);
    return int(slots.size()) - 1;
  }
  float* ptr(int s) { return slot_data[size_t(s)].data(); }
  const float* in(int v) { return values[size_t(values[size_t(v)].root)].data.data(); }
  float* out(int v) { return values[size_t(v)].data.data(); }
  const kernels::ActShape& act(int v) { return values[size_t(v)].act; }
  // How many gradient buffers reach root value v.
  size_t part_count(int v) { return at(v).grads.size() + (v == logits_root ? 1 : 0); }
  // The gradient at the output of `step`: the sum of its parts, through the step's ReLU
  // when it masks; the lone part itself when there is nothing to sum or mask and no
  // scratch slot (a conv with a residual always has one: its gradient is also the
  // residual's contribution).
  const float* grad(Step& step) {
    if (step.y == logits_root) step.parts[0] = root_grad;
    if (step.scratch < 0) return step.parts[0];
    kernels::cuda::sum_relu_mask(step.parts.data(), int(step.parts.size()),
                                 step.mask ? in(step.y) : nullptr,
                                 std::numeric_limits<float>::infinity(), ptr(step.scratch),
                                 act(step.y).numel(), stream);
    return ptr(step.scratch);
  }
  void lower(const Plan& plan);
  void finish(int logits_value);
};

}  // namespace ipg
