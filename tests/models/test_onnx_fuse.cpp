// The ONNX reader's rewrite of exported subgraphs into one op (models/onnx_fuse.cpp): GELU's
// Div/Erf/Add/Mul/Mul, as torch.onnx writes it, becomes one Gelu node where nothing else
// reads its inner values, and stays as written where something does. Either way the
// network computes GELU, checked against the formula with its input gradient; the ViT
// golden (test_onnx_transformers.cpp) runs fused.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "models/onnx_load_internal.h"
#include "tests/support/onnx_builder.h"
#include "tests/support/onnx_golden.h"

namespace ipg {
namespace {

using testing::attr_ints;
using testing::Builder;
using testing::kOnnx;
using testing::load_error;

// x [n, 1, 2, 3] -> GELU as torch.onnx writes it (its constants as Constant nodes, as
// torch does, or as initializers) -> flattened to [n, 6] logits. `extra_reader`: the Erf's
// output is also added to the result (so the pattern must not be fused).
Builder gelu_graph(bool constants_as_nodes, bool extra_reader) {
  Builder b(1, 2, 3);
  auto scalar = [&](const std::string& name, float v) {
    if (!constants_as_nodes) {
      b.init(name, {}, {v});
      return;
    }
    testing::attr_float(b.node("Constant", {}, {name}), "value_float", v);
  };
  scalar("sqrt2", 1.41421354f);
  scalar("one", 1.f);
  scalar("half", 0.5f);
  b.node("Div", {"x", "sqrt2"}, {"u"});
  b.node("Erf", {"u"}, {"e"});
  b.node("Add", {"e", "one"}, {"a"});    // torch's operand order ...
  b.node("Mul", {"a", "x"}, {"m"});      // ... and the other one: either is matched
  b.node("Mul", {"m", "half"}, {extra_reader ? "g" : "gelu"});
  if (extra_reader) b.node("Add", {"g", "e"}, {"gelu"});
  b.init_i64("flat", {-1, 6});
  b.node("Reshape", {"gelu", "flat"}, {"y"});
  return b;
}

double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_grad(double x) {
  return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / 2.5066282746310002;
}

std::vector<std::string> ops_of(const onnx::GraphProto& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.node()) ops.push_back(n.op_type());
  return ops;
}

TEST(OnnxFuse, GeluPatternBecomesOneNodeWhereNothingElseReadsInside) {
  for (bool nodes : {true, false}) {
    SCOPED_TRACE(nodes ? "constants as nodes" : "constants as initializers");
    Builder b = gelu_graph(nodes, false);
    EXPECT_EQ(onnx_detail::fuse_patterns(*b.g), 1);
    std::vector<std::string> want = {"Gelu", "Reshape"};
    if (nodes) want.insert(want.begin(), {"Constant", "Constant", "Constant"});
    EXPECT_EQ(ops_of(*b.g), want);
    EXPECT_EQ(b.g->node(int(want.size()) - 2).input_size(), 1);
    EXPECT_EQ(b.g->node(int(want.size()) - 2).input(0), "x");
    EXPECT_EQ(b.g->node(int(want.size()) - 2).output(0), "gelu");
  }
  Builder kept = gelu_graph(true, true);
  EXPECT_EQ(onnx_detail::fuse_patterns(*kept.g), 0);
  EXPECT_EQ(kept.g->node_size(), gelu_graph(true, true).g->node_size());
  // Another constant is another function: not fused.
  Builder other = gelu_graph(false, false);
  other.g->mutable_initializer(0)->set_float_data(0, 1.5f);
  EXPECT_EQ(onnx_detail::fuse_patterns(*other.g), 0);
  // The graph's output inside the pattern: not fused.
  Builder out = gelu_graph(false, false);
  out.g->mutable_output(0)->set_name("e");
  EXPECT_EQ(onnx_detail::fuse_patterns(*out.g), 0);
}

TEST(OnnxFuse, FusedOrNotTheNetworkComputesGeluAndItsGradient) {
  for (bool extra : {false, true}) {
    SCOPED_TRACE(extra ? "not fused (an extra reader)" : "fused");
    auto net = load_onnx_bytes(gelu_graph(true, extra).bytes(), "t.onnx");
    Generator gen(5);
    Tensor x = Tensor::uniform({4, 1, 2, 3}, -4.f, 4.f, gen);
    x.set_requires_grad(true);
    const Tensor y = net->logits(x);
    ASSERT_EQ(y.shape(), (Shape{4, 6}));
    ops::sum(y).backward();
    const auto xv = x.detach().to_vector(), yv = y.detach().to_vector(), gv = x.grad().to_vector();
    for (size_t i = 0; i < xv.size(); ++i) {
      const double v = xv[i], e = std::erf(v / std::sqrt(2.0));
      const double want = gelu(v) + (extra ? e : 0.0);
      const double dwant = gelu_grad(v) + (extra ? 0.7978845608028654 * std::exp(-0.5 * v * v) : 0.0);
      EXPECT_NEAR(yv[i], want, 2e-6) << "x = " << v;
      EXPECT_NEAR(gv[i], dwant, 2e-6) << "x = " << v;
    }
  }
}

// ONNX's own Gelu (opset 20): the exact form loads; the tanh approximation is refused.
TEST(OnnxFuse, GeluNodeExactFormOnly) {
  Builder b(1, 2, 3);
  b.m.mutable_opset_import(0)->set_version(20);
  b.node("Gelu", {"x"}, {"g"});
  b.init_i64("flat", {-1, 6});
  b.node("Reshape", {"g", "flat"}, {"y"});
  EXPECT_EQ(load_error(b.bytes()), "(loaded)");
  auto* a = b.g->mutable_node(0)->add_attribute();
  a->set_name("approximate");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("tanh");
  EXPECT_NE(load_error(b.bytes()).find("only approximate 'none'"), std::string::npos) << load_error(b.bytes());
}

// The test ViT (two encoder blocks) has two GELUs as torch.onnx writes them: both fused.
TEST(OnnxFuse, TheExportedVitsGelusAreFused) {
  std::ifstream in(kOnnx + "vit.onnx", std::ios::binary);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromIstream(&in));
  const int before = m.graph().node_size();
  EXPECT_EQ(onnx_detail::fuse_patterns(*m.mutable_graph()), 2);
  EXPECT_EQ(m.graph().node_size(), before - 8);
  for (const auto& n : m.graph().node()) EXPECT_NE(n.op_type(), "Erf");
}

}  // namespace
}  // namespace ipg
