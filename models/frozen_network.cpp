// FrozenNetwork: trace, plan, lower and check on the CPU; the autodiff graph elsewhere.
#include "models/frozen_network.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/random.h"
#include "engine/trace.h"

namespace ipg {

std::optional<Plan> plan_network(Network& net, const Shape& input, std::string* why) {
  net.eval();
  net.set_requires_grad(false);
  Generator gen(0x7ace);
  const Tensor x = Tensor::uniform(input, 0.f, 1.f, gen, net.device());
  trace::Graph g;
  {
    trace::Tracer tracer(x);
    const Tensor out = net.logits(tracer.input());
    g = tracer.finish(out);
  }
  return make_plan(g, why);
}

namespace {

// The largest |a - b| relative to 1 + max |b|.
double relative_gap(const Tensor& a, const Tensor& b) {
  const std::vector<float> va = a.cpu().to_vector(), vb = b.cpu().to_vector();
  double gap = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double d = std::fabs(double(va[i]) - double(vb[i]));
    gap = std::isnan(d) ? INFINITY : std::max(gap, d);
    scale = std::max(scale, std::fabs(double(vb[i])));
  }
  return gap / (1 + scale);
}

}  // namespace

FrozenNetwork::FrozenNetwork(Network& net, const Shape& input, Mode mode)
    : net_(net), input_(input) {
  net_.eval();
  net_.set_requires_grad(false);
  if (mode == Mode::Autodiff) {
    why_ = "autodiff requested";
    return;
  }
  if (!net_.device().is_cpu()) {
    why_ = "no fused lowering on " + net_.device().str() + " yet";
    return;
  }
  std::optional<Plan> plan = plan_network(net_, input, &why_);
  if (!plan) return;
  auto graph = std::make_unique<FrozenGraph>(*plan);
  // The plan must compute what the forward computes, on an input it was not traced on:
  // a value the trace took for a constant (a dependence hidden from autodiff) shows here.
  Generator gen(0xc4ec);
  const Tensor x = Tensor::uniform(input, 0.f, 1.f, gen);
  Tensor want;
  {
    NoGradGuard no_grad;
    want = net_.logits(x);
  }
  const double gap = relative_gap(graph->forward(x), want);
  graph->forget_forward();
  if (!(gap <= 1e-3)) {
    why_ = "the fused plan differs from the network's forward (relative gap " +
           std::to_string(gap) + ")";
    return;
  }
  plan_text_ = plan->str();
  graph_ = std::move(graph);
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
