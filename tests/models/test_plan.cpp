// The traced plan (engine/trace.h, engine/plan.h, models/frozen_network.h): what the
// planner fuses in every architecture, what it refuses and how it says so, and the
// numerical check that drops a plan built on a dependence hidden from autodiff.
#include <gtest/gtest.h>

#include <string>

#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/view.h"
#include "engine/random.h"
#include "engine/trace.h"
#include "models/frozen_network.h"
#include "tests/support/batchnorm_stats.h"

namespace ipg {
namespace {

int count(const trace::Graph& g, trace::Op op) {
  int n = 0;
  for (const trace::Node& node : g.nodes) n += node.op == op;
  return n;
}

trace::Graph trace_of(Network& net, const Shape& in) {
  net.eval();
  net.set_requires_grad(false);
  Generator gen(3);
  trace::Tracer t(Tensor::uniform(in, 0.f, 1.f, gen));
  const Tensor out = net.logits(t.input());
  return t.finish(out);
}

class PlanArch : public ::testing::TestWithParam<std::string> {};

// Every batch norm of the built-in networks follows a convolution or is a pre-activation
// (an affine step with its ReLU); every residual add ends a convolution; the only
// free-standing affine steps are the input normalization and pre-activation batch norms;
// nothing of the trace is left unlowered.
TEST_P(PlanArch, FusesBatchNormResidualAndRelu) {
  ModelConfig cfg;
  cfg.arch = GetParam();
  const bool big = cfg.arch == "resnet50" || cfg.arch == "vgg16-imagenet";
  cfg.in_channels = big ? 3 : 1;
  cfg.height = cfg.width = big ? 32 : 28;
  auto net = make_network(cfg);
  const Shape in{2, cfg.in_channels, cfg.height, cfg.width};
  const trace::Graph g = trace_of(*net, in);
  std::string why;
  const std::optional<Plan> plan = make_plan(g, &why);
  ASSERT_TRUE(plan) << why << "\n" << g.str();
  int convs = 0, residuals = 0, affines = 0, relus = 0, linears = 0;
  for (const PlanStep& s : plan->steps) {
    convs += s.kind == PlanStep::Kind::Conv;
    linears += s.kind == PlanStep::Kind::Linear;
    residuals += s.residual >= 0;
    relus += s.relu;
    if (s.kind == PlanStep::Kind::Affine) {
      ++affines;
      // Normalization (sub then mul, one step) or a batch norm with its ReLU.
      EXPECT_TRUE(s.from == "sub+mul" || s.from == "batch_norm+relu") << s.from;
    }
  }
  EXPECT_EQ(convs, count(g, trace::Op::Conv2d)) << plan->str();
  EXPECT_EQ(linears, count(g, trace::Op::Linear));
  EXPECT_EQ(residuals, count(g, trace::Op::Add)) << plan->str();
  EXPECT_EQ(relus, count(g, trace::Op::Relu)) << plan->str();
  // Batch norms: folded into a convolution, or one affine step each.
  EXPECT_EQ(affines - 1, count(g, trace::Op::BatchNorm) -
                             [&] {
                               int folded = 0;
                               for (const PlanStep& s : plan->steps)
                                 folded += s.from.find("conv2d+batch_norm") == 0;
                               return folded;
                             }());
  EXPECT_EQ(plan->shape(plan->logits), (Shape{2, 10}));
}

INSTANTIATE_TEST_SUITE_P(Architectures, PlanArch,
                         ::testing::Values("lenet5", "resnet20", "wrn-22-4", "vgg16",
                                           "vgg16-imagenet", "resnet50"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

// A small network whose forward the tests choose.
class Probe : public Network {
 public:
  enum Kind { Product, HiddenDependence, Plain };
  explicit Probe(Kind kind) : Network(config()), kind_(kind), gen_(4) {
    fc_ = &add_module("fc", std::make_shared<nn::Linear>(16, 10, true, gen_));
  }
  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"fc/weight", &fc_->weight}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = x;
    if (kind_ == Product) h = ops::mul(h, h);  // two computed values: not lowered
    if (kind_ == HiddenDependence) {
      // The first pixel read through the host: autodiff sees a constant, yet it changes
      // with the input.
      const float first = x.detach().cpu().to_vector()[0];
      h = ops::sub(h, Tensor::from_vector({first}, {1, 1, 1, 1}, x.device()));
    }
    return fc_->forward(ops::flatten(h));
  }

 private:
  static ModelConfig config() {
    ModelConfig c;
    c.arch = "probe";
    c.height = c.width = 4;
    return c;
  }
  Kind kind_;
  Generator gen_;
  nn::Linear* fc_ = nullptr;
};

TEST(Plan, UnloweredOpIsNamedAndTheAutodiffGraphRuns) {
  Probe net(Probe::Product);
  FrozenNetwork f(net, {2, 1, 4, 4});
  EXPECT_FALSE(f.fused());
  EXPECT_NE(f.why_unfused().find("'mul'"), std::string::npos) << f.why_unfused();
  EXPECT_NE(f.why_unfused().find("product of two computed values"), std::string::npos);
  // Still runs, through autodiff.
  Generator gen(1);
  const Tensor x = Tensor::uniform({2, 1, 4, 4}, 0.f, 1.f, gen);
  EXPECT_EQ(f.logits(x).shape(), (Shape{2, 10}));
  EXPECT_EQ(f.input_grad(Tensor::ones({2, 10})).shape(), (Shape{2, 1, 4, 4}));
}

TEST(Plan, PlanThatDisagreesWithTheForwardIsDropped) {
  // The planner accepts the hidden value as a scalar constant (an affine step) ...
  Probe hidden(Probe::HiddenDependence);
  std::string why;
  ASSERT_TRUE(plan_network(hidden, {2, 1, 4, 4}, &why)) << why;
  // ... and the check on a second input catches it.
  FrozenNetwork f(hidden, {2, 1, 4, 4});
  EXPECT_FALSE(f.fused());
  EXPECT_NE(f.why_unfused().find("differs"), std::string::npos) << f.why_unfused();
  // The same network without the hidden read is fused: the check is not what refused it.
  Probe plain(Probe::Plain);
  EXPECT_TRUE(FrozenNetwork(plain, {2, 1, 4, 4}).fused());
}

TEST(Plan, TraceRecordsOnlyInputDependentOps) {
  auto net = make_network(ModelConfig{"lenet5", 1, 28, 28, 10, {}, {}, 1});
  const trace::Graph g = trace_of(*net, {1, 1, 28, 28});
  // Every node's output depends on the input: no node has only constant inputs.
  for (const trace::Node& n : g.nodes) {
    bool from_input = false;
    for (int v : n.inputs) from_input |= v >= 0 && !g.is_constant(v);
    EXPECT_TRUE(from_input) << n.name;
    EXPECT_NE(n.op, trace::Op::Opaque) << n.name;
  }
  EXPECT_EQ(count(g, trace::Op::Conv2d), 2);  // LeNet-5: two convolutions, three linears
  EXPECT_EQ(count(g, trace::Op::Linear), 3);
}

}  // namespace
}  // namespace ipg
