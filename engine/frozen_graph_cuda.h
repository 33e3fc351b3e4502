// The CUDA lowering of a plan (engine/plan.h): FrozenGraph's twin (engine/frozen_graph.h)
// for the fingerprint loop on a GPU, with the same interface and the same gradient
// plumbing. Against the autodiff graph on CUDA it
//  - runs each planned convolution as one cuDNN call with the folded bias, the residual
//    and the ReLU fused (kernels/cuda/fused_conv.h), and its input gradient through a
//    backward-data algorithm chosen when the graph is built;
//  - keeps activations in NCHW, cuDNN's layout, so a flatten is an alias (no step);
//  - sums each value's gradient parts through its ReLU mask in one kernel, with nothing
//    zeroed and nothing accumulated in place (kernels/cuda/blocked.h);
//  - allocates every buffer, uploads every weight and chooses every algorithm when it is
//    built: forward() and backward() allocate nothing, never synchronize with the host
//    and never switch devices; all their work goes to the engine's stream of the graph's
//    device (kernels/cuda/runtime.h), so an iteration can be captured as a CUDA graph.
// The caller keeps the graph's device current (every engine op on it does, and building
// the graph does). Only in builds with the CUDA backend (IPG_HAS_CUDA).
#pragma once

#include <memory>

#include "engine/device.h"
#include "engine/frozen_graph.h"
#include "engine/plan.h"
#include "engine/tensor.h"

namespace ipg {

class FrozenGraphCuda {
 public:
  // The plan lowered onto `device` (CUDA; made current). cuDNN's algorithm search runs
  // here, once per new convolution shape, and synchronizes the device.
  FrozenGraphCuda(const Plan& plan, Device device);
  ~FrozenGraphCuda();
  FrozenGraphCuda(const FrozenGraphCuda&) = delete;
  FrozenGraphCuda& operator=(const FrozenGraphCuda&) = delete;

  Device device() const;
  const Shape& input_shape() const;

  // Runs the graph on x (float32, the input shape, on the graph's device). Returns the
  // logits, a buffer of the graph that the next call overwrites.
  const Tensor& forward(const Tensor& x);
  // Forgets the last forward(): backward() needs a new one (and the caller's input is
  // no longer referenced).
  void forget_forward();
  // Back-propagates dlogits (float32, the logits' shape, on the graph's device) through
  // the last forward(). Returns the gradient with respect to its input, a buffer of the
  // graph.
  const Tensor& backward(const Tensor& dlogits);

  // Bytes on the device, as FrozenGraph counts them (weights not counted).
  using Memory = FrozenGraph::Memory;
  Memory memory() const;

  struct State;
  struct Step;

 private:
  std::unique_ptr<State> st_;
};

}  // namespace ipg
