// FrozenNetwork: trace, plan, lower for the network's device and check; the autodiff graph
// where that fails.
#include "models/frozen_network.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/random.h"
#include "engine/trace.h"
#if IPG_HAS_CUDA
#include "engine/frozen_graph_cuda.h"
#else
namespace ipg {
// No CUDA lowering in a build without the CUDA backend: cuda_graph_ stays null.
class FrozenGraphCuda {};
}  // namespace ipg
#endif

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

// The lowering must compute what the forward computes, on an input it was not traced on:
// a value the trace took for a constant (a dependence hidden from autodiff) shows here.
template <typename Graph>
bool FrozenNetwork::agrees(Graph& graph, const Shape& shape) {
  Generator gen(0xc4ec);
  const Tensor x = Tensor::uniform(shape, 0.f, 1.f, gen, net_.device());
  Tensor want;
  {
    NoGradGuard no_grad;
    want = net_.logits(x);
  }
  const double gap = relative_gap(graph.forward(x), want);
  graph.forget_forward();
  if (gap <= 1e-3) return true;
  why_ = "the fused plan differs from the network's forward (relative gap " + std::to_string(gap) +
         ")";
  return false;
}

FrozenNetwork::FrozenNetwork(Network& net, const Shape& input, Mode mode)
    : net_(net), input_(input) {
  net_.eval();
  net_.set_requires_grad(false);
  if (mode == Mode::Autodiff) {
    why_ = "autodiff requested";
    return;
  }
  // Traced and checked on a batch of two (every step works row by row, so the plan is
  // the same for any batch; two rows keep the trace's memory and the check's time small
  // whatever the batch), then lowered for `input`.
  const Shape small{2, input[1], input[2], input[3]};
  std::optional<Plan> plan = plan_network(net_, small, &why_);
  if (!plan) return;
  if (net_.device().is_cpu()) {
    {
      FrozenGraph check(*plan);
      if (!agrees(check, small)) return;
    }
    graph_ = std::make_unique<FrozenGraph>(plan->with_batch(input[0]));
  } else {
#if IPG_HAS_CUDA
    // Whatever stops the lowering or its first run (cuDNN refusing a convolution, device
    // memory, a step it does not take) leaves the autodiff graph running, saying why.
    try {
      auto graph = std::make_unique<FrozenGraphCuda>(plan->with_batch(input[0]), net_.device());
      if (agrees(*graph, input_)) cuda_graph_ = std::move(graph);
    } catch (const std::exception& e) {
      why_ = std::string("the CUDA lowering failed: ") + e.what();
      return;
    }
#else
    why_ = "no CUDA backend in this build";  // unreachable: the network is on CUDA
    return;
#endif
  }
  if (fused()) plan_text_ = plan->str();
}

FrozenNetwork::~FrozenNetwork() = default;

size_t FrozenNetwork::memory_bytes() const {
  auto sum = [](const auto& m) { return m.values + m.gradients + m.workspace; };
  if (graph_) return sum(graph_->memory());
#if IPG_HAS_CUDA
  if (cuda_graph_) return sum(cuda_graph_->memory());
#endif
  return 0;
}

Tensor FrozenNetwork::logits(const Tensor& x) {
  if (x.shape() != input_)
    throw ShapeError(net_.arch() + ": frozen for input " + shape_str(input_) + ", got " +
                     shape_str(x.shape()));
  if (graph_) return graph_->forward(x);
#if IPG_HAS_CUDA
  if (cuda_graph_) return cuda_graph_->forward(x);
#endif
  x_ = x.detach();
  x_.set_requires_grad(true);
  logits_ = net_.logits(x_);
  return logits_.detach();
}

Tensor FrozenNetwork::input_grad(const Tensor& dlogits) {
  if (graph_) return graph_->backward(dlogits);
#if IPG_HAS_CUDA
  if (cuda_graph_) return cuda_graph_->backward(dlogits);
#endif
  if (!logits_.defined()) throw std::logic_error("FrozenNetwork::input_grad before logits()");
  logits_.backward(dlogits);
  Tensor g = x_.grad();
  logits_ = Tensor();  // the graph is spent; a second call needs a new forward
  return g;
}

}  // namespace ipg
