// Reverse-mode autodiff over a dynamic graph. An op whose inputs need gradients attaches
// a Node to its output: the inputs and a backward closure. Tensor::backward() walks the
// nodes in reverse topological order; each closure accumulates into its inputs' gradient
// buffers through a GradSink. Inputs that do not need a gradient (frozen parameters,
// constants) are never asked for one, so no weight gradient is computed when only the
// input gradient is wanted.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ipg {

class GradSink;

// Backward closure: receives the gradient of the node's output. It must capture only
// what it needs, and never the output itself (use output.detach(): no reference cycle).
using BackwardFn = std::function<void(const Tensor& grad_output, GradSink& sink)>;

struct Node {
  std::string name;
  std::vector<Tensor> inputs;
  BackwardFn backward;
};

// Where a backward closure puts input gradients.
class GradSink {
 public:
  virtual ~GradSink() = default;
  // Whether input i needs a gradient at all.
  virtual bool wants(size_t i) const = 0;
  // The accumulation buffer of input i, shaped like it and zero-filled on first use;
  // kernels add into it (+=).
  virtual Tensor& at(size_t i) = 0;
  // Input i's buffer for a kernel that can either write or add. `accumulate` comes back
  // true when the buffer already holds a gradient (add into it), false when it is new and
  // uninitialized (write every element). Most values have one consumer, so this saves the
  // zero fill and a read of the buffer that at() costs on first use.
  virtual Tensor& target(size_t i, bool& accumulate) = 0;
};

namespace autograd {

// Whether graph recording is on for this thread (see NoGradGuard).
bool grad_enabled();

// Any of the tensors needs a gradient and recording is on.
bool needs_graph(const std::vector<Tensor>& inputs);

// Makes `out` an interior node computed from `inputs`. Call only if needs_graph(inputs).
void attach(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn fn);

// Back-propagates `grad_output` (ones for a one-element root when undefined).
void backward(const Tensor& root, const Tensor& grad_output);

}  // namespace autograd

// Turns graph recording off for its lifetime (inference, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace ipg
