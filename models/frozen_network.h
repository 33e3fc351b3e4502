// A network as the fingerprint loop uses it: weights frozen, evaluation mode, a batch of
// fixed shape; forward to the logits, then the gradient with respect to the input images
// for a given gradient at the logits (the loss and its derivative are the caller's).
//
// On the CPU, for the architectures that describe themselves (Network::freeze: all
// built-in ones), this runs the fused FrozenGraph (engine/frozen_graph.h); otherwise, and
// on CUDA, the autodiff graph with frozen parameters. Both give the same values up to
// rounding (tests/models/test_frozen_network.cpp); Mode::Autodiff forces the second.
#pragma once

#include <memory>

#include "engine/frozen_graph.h"
#include "models/network.h"

namespace ipg {

class FrozenNetwork {
 public:
  enum class Mode { Auto, Autodiff };
  // Puts `net` in evaluation mode with every parameter frozen (requires_grad false); it
  // must outlive this object and keep its weights (the fused graph holds a copy).
  // input: [n, C, H, W], the batch every call takes; inputs live on net's device.
  FrozenNetwork(Network& net, const Shape& input, Mode mode = Mode::Auto);
  ~FrozenNetwork();

  // Whether the fused graph runs (else the autodiff graph).
  bool fused() const { return graph_ != nullptr; }
  const Shape& input_shape() const { return input_; }

  // [n, classes] logits of x, [0,1] pixels of the input shape.
  Tensor logits(const Tensor& x);
  // d(loss)/dx for the last logits() call, given d(loss)/d(logits). Fused: a buffer that
  // the next call overwrites (clone() to keep it).
  Tensor input_grad(const Tensor& dlogits);

 private:
  Network& net_;
  Shape input_;
  std::unique_ptr<FrozenGraph> graph_;
  Tensor x_, logits_;  // autodiff: the leaf input and the graph's output
};

}  // namespace ipg
