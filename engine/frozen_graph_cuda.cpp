// FrozenGraphCuda: a plan's steps on CUDA and the gradient plumbing between them
// (frozen_graph_cuda.h), the scheme of the CPU lowering (frozen_graph.cpp). This file:
// building, forward(), backward() and memory(); the steps and the lowering of a plan into
// them are in frozen_graph_cuda_lower.cpp, the state they share in
// frozen_graph_cuda_internal.h.
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

#include <set>
#include <stdexcept>
#include <string>

#include "engine/dispatch.h"
#include "engine/frozen_graph_cuda_internal.h"
#include "kernels/cuda/blocked.h"

namespace ipg {

namespace kc = kernels::cuda;

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
    kc::sum_relu_mask(g.input_parts.data(), int(g.input_parts.size()), nullptr, 0.f, g.dx.data(),
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
