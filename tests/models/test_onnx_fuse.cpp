// The ONNX reader's rewrite of exported subgraphs into one op (models/onnx_fuse.cpp): GELU's
// Div/Erf/Add/Mul/Mul, LayerNorm's nine nodes and hard swish's HardSigmoid/Mul, as
// torch.onnx writes them, become one node where nothing else reads their inner values, and
// stay as written where something does or where they compute something else. Either way the network computes the function,
// checked against the formula with its input gradient; the ViT, Swin, ConvNeXt and
// MobileNet goldens (test_onnx_transformers.cpp, test_onnx.cpp) run fused.
#include <gtest/gtest.h>

#include <algorithm>
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

struct LnGraph {
  bool constants_as_nodes = true;
  bool beta = true;
  int64_t axis = -1;  // of both means: 3 computes the same on [n, 2, 3, 5] and is not matched
  float exponent = 2.f;
  std::string extra_reader;  // an inner value also added to the result: not fused
  std::string output;        // the graph's output instead of "y": inside, not fused
};

// x [n, 2, 3, 5] -> LayerNorm over the last axis as torch.onnx writes it below opset 17
// -> flattened to [n, 30] logits.
Builder layer_norm_graph(const LnGraph& o) {
  Builder b(2, 3, 5);
  auto scalar = [&](const std::string& name, float v) {
    if (o.constants_as_nodes)
      testing::attr_float(b.node("Constant", {}, {name}), "value_float", v);
    else
      b.init(name, {}, {v});
  };
  scalar("two", o.exponent);
  scalar("eps", 1e-5f);
  b.init("gamma", {5}, {0.5f, 1.5f, -1.f, 2.f, 0.25f});
  b.init("beta", {5}, {0.1f, -0.2f, 0.3f, 0.f, 1.f});
  attr_ints(b.node("ReduceMean", {"x"}, {"mean"}), "axes", {o.axis});
  b.node("Sub", {"x", "mean"}, {"d"});
  b.node("Pow", {"d", "two"}, {"sq"});
  attr_ints(b.node("ReduceMean", {"sq"}, {"var"}), "axes", {o.axis});
  b.node("Add", {"var", "eps"}, {"ve"});
  b.node("Sqrt", {"ve"}, {"sd"});
  b.node("Div", {"d", "sd"}, {"nrm"});
  b.node("Mul", {"nrm", "gamma"}, {"sc"});
  std::string last = "sc";
  if (o.beta) b.node("Add", {"sc", "beta"}, {last = "ln"});
  if (!o.extra_reader.empty()) b.node("Add", {last, o.extra_reader}, {last = "ln2"});
  b.init_i64("flat", {-1, 30});
  b.node("Reshape", {last, "flat"}, {"y"});
  if (!o.output.empty()) b.g->mutable_output(0)->set_name(o.output);
  return b;
}

TEST(OnnxFuse, LayerNormPatternBecomesOneNodeWhereNothingElseReadsInside) {
  for (bool nodes : {true, false})
    for (bool beta : {true, false}) {
      SCOPED_TRACE(std::string(nodes ? "constants as nodes" : "as initializers") +
                   (beta ? ", with beta" : ", without beta"));
      LnGraph o;
      o.constants_as_nodes = nodes;
      o.beta = beta;
      Builder b = layer_norm_graph(o);
      EXPECT_EQ(onnx_detail::fuse_patterns(*b.g), 1);
      std::vector<std::string> want = {"LayerNormalization", "Reshape"};
      if (nodes) want.insert(want.begin(), {"Constant", "Constant"});
      ASSERT_EQ(ops_of(*b.g), want);
      const auto& ln = b.g->node(int(want.size()) - 2);
      std::vector<std::string> in(ln.input().begin(), ln.input().end());
      const std::vector<std::string> want_in =
          beta ? std::vector<std::string>{"x", "gamma", "beta"} : std::vector<std::string>{"x", "gamma"};
      EXPECT_EQ(in, want_in);
      EXPECT_EQ(ln.output(0), beta ? "ln" : "sc");
      ASSERT_EQ(ln.attribute_size(), 2);
      EXPECT_EQ(ln.attribute(0).i(), -1);
      EXPECT_EQ(ln.attribute(1).f(), 1e-5f);
      EXPECT_EQ(load_error(b.bytes()), "(loaded)");
    }
  // Each inner value read elsewhere, each a graph output, another axis, another exponent:
  // not fused.
  for (const char* inner : {"mean", "d", "sq", "var", "ve", "sd", "nrm"}) {
    SCOPED_TRACE(inner);
    LnGraph read, out;
    read.extra_reader = inner;
    out.output = inner;
    EXPECT_EQ(onnx_detail::fuse_patterns(*layer_norm_graph(read).g), 0);
    EXPECT_EQ(onnx_detail::fuse_patterns(*layer_norm_graph(out).g), 0);
  }
  LnGraph axis, cube;
  axis.axis = 3;
  cube.exponent = 3.f;
  EXPECT_EQ(onnx_detail::fuse_patterns(*layer_norm_graph(axis).g), 0);
  EXPECT_EQ(onnx_detail::fuse_patterns(*layer_norm_graph(cube).g), 0);
  // The mean without its axis kept, a gamma of one element (a broadcast): not fused.
  Builder flat = layer_norm_graph({});
  testing::attr_int(flat.g->mutable_node(2), "keepdims", 0);
  EXPECT_EQ(onnx_detail::fuse_patterns(*flat.g), 0);
  Builder one = layer_norm_graph({});
  one.g->mutable_initializer(0)->set_dims(0, 1);
  EXPECT_EQ(onnx_detail::fuse_patterns(*one.g), 0);
}

// Fused (axes [-1]) and as written (axes [3], the same function, not matched): the same
// logits, the formula's to float rounding, and the same input gradient.
TEST(OnnxFuse, FusedLayerNormComputesWhatTheWrittenOutFormDoes) {
  LnGraph written;
  written.axis = 3;
  auto fused = load_onnx_bytes(layer_norm_graph({}).bytes(), "t.onnx");
  auto plain = load_onnx_bytes(layer_norm_graph(written).bytes(), "t.onnx");
  Generator gen(6);
  const Tensor x0 = Tensor::uniform({3, 2, 3, 5}, -3.f, 3.f, gen);
  const Tensor r = Tensor::uniform({3, 30}, -1.f, 1.f, gen);
  std::vector<std::vector<float>> y, grad;
  for (auto* net : {fused.get(), plain.get()}) {
    Tensor x = x0.clone();
    x.set_requires_grad(true);
    const Tensor out = net->logits(x);
    ASSERT_EQ(out.shape(), (Shape{3, 30}));
    out.backward(r);
    y.push_back(out.detach().to_vector());
    grad.push_back(x.grad().to_vector());
  }
  const auto xv = x0.to_vector();
  const double gamma[5] = {0.5, 1.5, -1, 2, 0.25}, beta[5] = {0.1, -0.2, 0.3, 0, 1};
  for (size_t row = 0; row < 18; ++row) {
    double m = 0, v = 0;
    for (size_t c = 0; c < 5; ++c) m += xv[row * 5 + c] / 5.0;
    for (size_t c = 0; c < 5; ++c) v += (xv[row * 5 + c] - m) * (xv[row * 5 + c] - m) / 5.0;
    for (size_t c = 0; c < 5; ++c) {
      const size_t i = row * 5 + c;
      const double want = (xv[i] - m) / std::sqrt(v + 1e-5) * gamma[c] + beta[c];
      EXPECT_NEAR(y[0][i], want, 4e-6) << "element " << i;
      EXPECT_NEAR(y[1][i], want, 4e-6) << "element " << i;
      EXPECT_NEAR(grad[0][i], grad[1][i], 1e-5 * (1 + std::fabs(grad[1][i]))) << "element " << i;
    }
  }
}

// The test ViT (two encoder blocks) has two GELUs and five LayerNorms (two per block and
// the last one) as torch.onnx writes them at opset 13: all fused.
TEST(OnnxFuse, TheExportedVitsGelusAndLayerNormsAreFused) {
  std::ifstream in(kOnnx + "vit.onnx", std::ios::binary);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromIstream(&in));
  const int before = m.graph().node_size();
  EXPECT_EQ(onnx_detail::fuse_patterns(*m.mutable_graph()), 7);
  EXPECT_EQ(m.graph().node_size(), before - 2 * 4 - 5 * 8);
  int layer_norms = 0;
  for (const auto& n : m.graph().node()) {
    EXPECT_NE(n.op_type(), "Erf");
    EXPECT_NE(n.op_type(), "Sqrt");
    layer_norms += n.op_type() == "LayerNormalization";
  }
  EXPECT_EQ(layer_norms, 5);
}

// x [n, 1, 2, 3] -> HardSigmoid(alpha 1/6) -> Mul(x, it), as torch.onnx writes Hardswish
// below opset 14 -> flattened to [n, 6] logits; `alpha` other than 1/6, or the gate
// multiplying another value (a squeeze-and-excitation's), is no hard swish.
Builder hard_swish_graph(float alpha, bool gate_of_other) {
  Builder b(1, 2, 3);
  testing::attr_float(b.node("HardSigmoid", {"x"}, {"h"}), "alpha", alpha);
  if (gate_of_other) b.node("Relu", {"x"}, {"r"});
  b.node("Mul", {gate_of_other ? "r" : "x", "h"}, {"s"});
  b.init_i64("flat", {-1, 6});
  b.node("Reshape", {"s", "flat"}, {"y"});
  return b;
}

TEST(OnnxFuse, HardSigmoidTimesItsInputBecomesHardSwish) {
  Builder b = hard_swish_graph(1.f / 6, false);
  EXPECT_EQ(onnx_detail::fuse_patterns(*b.g), 1);
  EXPECT_EQ(ops_of(*b.g), (std::vector<std::string>{"HardSwish", "Reshape"}));
  EXPECT_EQ(b.g->node(0).input(0), "x");
  EXPECT_EQ(b.g->node(0).output(0), "s");
  EXPECT_EQ(onnx_detail::fuse_patterns(*hard_swish_graph(0.2f, false).g), 0);
  EXPECT_EQ(onnx_detail::fuse_patterns(*hard_swish_graph(1.f / 6, true).g), 0);
  // Fused or not, x * min(max(x / 6 + 1/2, 0), 1) and its gradient.
  for (bool gate : {false, true}) {
    SCOPED_TRACE(gate ? "a gate of relu(x): not fused" : "fused");
    auto net = load_onnx_bytes(hard_swish_graph(1.f / 6, gate).bytes(), "t.onnx");
    Generator gen(7);
    Tensor x = Tensor::uniform({4, 1, 2, 3}, -5.f, 5.f, gen);
    x.set_requires_grad(true);
    const Tensor y = net->logits(x);
    ops::sum(y).backward();
    const auto xv = x.detach().to_vector(), yv = y.detach().to_vector(), gv = x.grad().to_vector();
    for (size_t i = 0; i < xv.size(); ++i) {
      const double v = xv[i], h = std::min(std::max(v / 6 + 0.5, 0.0), 1.0);
      const double m = gate ? std::max(v, 0.0) : v;
      const double dh = (v > -3 && v < 3) ? 1.0 / 6 : 0.0;
      const double dm = gate ? (v > 0 ? 1.0 : 0.0) : 1.0;
      EXPECT_NEAR(yv[i], m * h, 1e-6) << "x = " << v;
      EXPECT_NEAR(gv[i], dm * h + m * dh, 1e-6) << "x = " << v;
    }
  }
}

// The MobileNet golden's two Hardswish activations (its last block's expansion and
// depthwise convolution) are fused; its squeeze-and-excitation's HardSigmoid, a gate on
// another value, stays.
TEST(OnnxFuse, TheMobileNetsHardSwishIsFusedAndItsGateIsNot) {
  std::ifstream in(kOnnx + "mobilenet.onnx", std::ios::binary);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromIstream(&in));
  const auto before = ops_of(m.graph());
  EXPECT_EQ(onnx_detail::fuse_patterns(*m.mutable_graph()), 2);
  const auto after = ops_of(m.graph());
  EXPECT_EQ(std::count(before.begin(), before.end(), "HardSigmoid"), 3);
  EXPECT_EQ(std::count(after.begin(), after.end(), "HardSigmoid"), 1);
  EXPECT_EQ(std::count(after.begin(), after.end(), "HardSwish"), 2);
}

// The fuzz seed written for the fusion (tests/golden/make_onnx_transformers.py) holds both
// patterns, so the fuzzer starts from graphs that reach the rewrite.
TEST(OnnxFuse, TheFuzzSeedHoldsBothPatterns) {
  std::ifstream in(std::string(IPG_TEST_DATA_DIR) + "/../fuzz/corpus/onnx/tiny-norm-mlp.onnx",
                   std::ios::binary);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromIstream(&in));
  EXPECT_EQ(onnx_detail::fuse_patterns(*m.mutable_graph()), 2);
  const auto ops = ops_of(m.graph());
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "LayerNormalization"), 1);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "Gelu"), 1);
}

}  // namespace
}  // namespace ipg
