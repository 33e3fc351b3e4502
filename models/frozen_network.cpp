// FrozenNetwork: the fused graph where it exists, the autodiff graph elsewhere.
#include "models/frozen_network.h"

#include <stdexcept>

#include "engine/error.h"

namespace ipg {

FrozenNetwork::FrozenNetwork(Network& net, const Shape& input, Mode mode)
    : net_(net), input_(input) {
  net_.eval();
  net_.set_requires_grad(false);
  if (mode == Mode::Auto && net_.device().is_cpu()) {
    auto graph = std::make_unique<FrozenGraph>(input);
    if (net_.freeze(*graph)) graph_ = std::move(graph);
  }
}

FrozenNetwork::~FrozenNetwork() = default;

Tensor FrozenNetwork::logits(const Tensor& x) {
  if (x.shape() != input_)
    throw ShapeError(net_.arch() + ": frozen for input " + shape_str(input_) + ", got " +
                     shape_str(x.shape()));
  if (graph_) return graph_->forward(x);
  x_ = x.detach();
  x_.set_requires_grad(true);
  logits_ = net_.logits(x_);
  return logits_.detach();
}

Tensor FrozenNetwork::input_grad(const Tensor& dlogits) {
  if (graph_) return graph_->backward(dlogits);
  if (!logits_.defined()) throw std::logic_error("FrozenNetwork::input_grad before logits()");
  logits_.backward(dlogits);
  Tensor g = x_.grad();
  logits_ = Tensor();  // the graph is spent; a second call needs a new forward
  return g;
}

}  // namespace ipg
