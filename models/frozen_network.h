// A network as the fingerprint loop uses it: weights frozen, evaluation mode, a batch of
// fixed shape; forward to the logits, then the gradient with respect to the input images
// for a given gradient at the logits (the loss and its derivative are the caller's).
//
// The network's own forward is traced once on its device (engine/trace.h), planned into
// fused steps (engine/plan.h) and lowered for that device: a FrozenGraph on the CPU
// (engine/frozen_graph.h), a FrozenGraphCuda on a GPU (engine/frozen_graph_cuda.h). The
// lowering is then checked against the autodiff forward on a second input and dropped if
// it disagrees. Where no plan is made (an op the planner does not lower) or the lowering
// fails or disagrees, the autodiff graph with frozen parameters runs, and why_unfused()
// says why. Both give the same values up to rounding (tests/models/test_frozen_network*.cpp);
// Mode::Autodiff forces the second.
#pragma once

#include <memory>
#include <string>

#include "engine/frozen_graph.h"
#include "models/network.h"

namespace ipg {

class FrozenGraphCuda;

class FrozenNetwork {
 public:
  enum class Mode { Auto, Autodiff };
  // Puts `net` in evaluation mode with every parameter frozen (requires_grad false); it
  // must outlive this object and keep its weights (the fused graph holds a copy).
  // input: [n, C, H, W], the batch every call takes; inputs live on net's device.
  FrozenNetwork(Network& net, const Shape& input, Mode mode = Mode::Auto);
  ~FrozenNetwork();

  // Whether the fused graph runs (else the autodiff graph).
  bool fused() const { return graph_ != nullptr || cuda_graph_ != nullptr; }
  // Why the fused graph does not run ("" when it does).
  const std::string& why_unfused() const { return why_; }
  // The fused steps (empty when unfused): one line per step.
  const std::string& plan_text() const { return plan_text_; }
  // Bytes the fused graph holds for its batch (activations, gradient buffers, workspace;
  // weights not counted); 0 when the autodiff graph runs.
  size_t memory_bytes() const;
  const Shape& input_shape() const { return input_; }

  // [n, classes] logits of x, [0,1] pixels of the input shape.
  Tensor logits(const Tensor& x);
  // d(loss)/dx for the last logits() call, given d(loss)/d(logits). Fused: a buffer that
  // the next call overwrites (clone() to keep it).
  Tensor input_grad(const Tensor& dlogits);

 private:
  Network& net_;
  Shape input_;
  std::unique_ptr<FrozenGraph> graph_;           // fused, on the CPU
  std::unique_ptr<FrozenGraphCuda> cuda_graph_;  // fused, on CUDA
  std::string why_, plan_text_;
  Tensor x_, logits_;  // autodiff: the leaf input and the graph's output

  // Whether a lowering's logits agree with the network's forward (else why_ says so).
  template <typename Graph>
  bool agrees(Graph& graph, const Shape& shape);
};

// Traces net's forward (evaluation mode, parameters frozen) at the given input shape
// and plans it; nullopt with *why when the planner refuses. The plan is not checked
// numerically here (FrozenNetwork does it, on a batch of two, before lowering the plan
// for its own batch: tracing and checking cost two small forwards whatever the batch).
std::optional<Plan> plan_network(Network& net, const Shape& input, std::string* why);

}  // namespace ipg
