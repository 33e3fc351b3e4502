// Grouped, depthwise and dilated ONNX Convs are read as one native convolution each (the
// weight kept as it is, [c_out, c_in / groups, kh, kw]: engine/ops/conv.h), planned and
// fused as such by the frozen network (engine/plan.h), and compute what their dense
// expansion computes (the kernel spread with zeros, a grouped weight as its block-diagonal
// full weight: the reader's earlier form, rebuilt here as the reference). Logits and input
// gradients through autodiff and through the fused graph, with channel counts that take
// the channel-blocked layouts (16k) and the plain ones; on CUDA too (skipped without one).
// Graphs built here with libonnx's protobuf classes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "models/onnx_model.h"
#include "onnx/onnx_pb.h"
#include "tests/support/network_checks.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using testing::rel_gap;
using testing::input_grad;

struct ConvSpec {
  int c_in, c_out, k, groups, dilation, stride, pad;
  bool bias, bn, relu;
  bool add_prev = false;  // + the previous conv's output (a residual), before the ReLU
};

// The networks: a plain stem, then depthwise (dilated, strided, with a batch norm, with a
// residual) and grouped convolutions; global average pool and a Gemm to 5 classes.
std::vector<ConvSpec> blocked_net() {  // 16 and 32 channels: nChw16c between layers
  return {{3, 16, 3, 1, 1, 1, 1, false, false, true},
          {16, 16, 3, 16, 1, 1, 1, false, true, true},
          {16, 16, 3, 16, 2, 1, 2, true, true, true, true},
          {16, 32, 3, 4, 1, 2, 1, false, true, true},
          {32, 32, 3, 32, 1, 2, 1, true, false, false}};
}
std::vector<ConvSpec> plain_net() {  // 6 and 12 channels: plain NCHW
  return {{3, 6, 3, 1, 1, 1, 1, true, false, true},
          {6, 6, 3, 6, 2, 1, 2, false, true, true},
          {6, 12, 3, 3, 1, 2, 1, true, false, true},
          {12, 12, 5, 12, 1, 1, 2, false, false, false, true}};
}

constexpr int kSize = 10, kClasses = 5;

// OIHW weight of `s` as its dense equivalent: [c_out, c_in, (k-1)d+1, (k-1)d+1].
std::vector<float> expand(const ConvSpec& s, const std::vector<float>& w) {
  const int cg = s.c_in / s.groups, mg = s.c_out / s.groups, ke = (s.k - 1) * s.dilation + 1;
  std::vector<float> full(size_t(s.c_out * s.c_in * ke * ke), 0.f);
  for (int o = 0; o < s.c_out; ++o)
    for (int i = 0; i < cg; ++i)
      for (int a = 0; a < s.k; ++a)
        for (int b = 0; b < s.k; ++b)
          full[size_t(((o * s.c_in + (o / mg) * cg + i) * ke + a * s.dilation) * ke +
                      b * s.dilation)] = w[size_t(((o * cg + i) * s.k + a) * s.k + b)];
  return full;
}

void ints(onnx::NodeProto* n, const char* name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

// The network's ONNX bytes: native (group and dilations attributes) or dense (each
// convolution's weight expanded). Weights drawn from `seed`, the same for both.
std::string build(const std::vector<ConvSpec>& specs, bool dense, uint64_t seed) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("n");
  for (int d : {specs[0].c_in, kSize, kSize}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  g->add_output()->set_name("y");
  Generator gen(seed);
  auto init = [&](const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    for (float f : v) t->add_float_data(f);
  };
  auto draw = [&](int64_t n, float lo, float hi) {
    return Tensor::uniform({n}, lo, hi, gen).to_vector();
  };
  auto node = [&](const std::string& op, std::vector<std::string> ins, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (auto& s : ins) n->add_input(s);
    n->add_output(out);
    return n;
  };
  std::string h = "x", prev;
  for (size_t l = 0; l < specs.size(); ++l) {
    const ConvSpec& s = specs[l];
    const std::string id = std::to_string(l);
    const int cg = s.c_in / s.groups;
    const float bound = std::sqrt(6.f / float(cg * s.k * s.k));
    const std::vector<float> w = draw(int64_t(s.c_out) * cg * s.k * s.k, -bound, bound);
    std::vector<std::string> conv_in{h, "w" + id};
    if (dense) {
      const int ke = (s.k - 1) * s.dilation + 1;
      init("w" + id, {s.c_out, s.c_in, ke, ke}, expand(s, w));
    } else {
      init("w" + id, {s.c_out, cg, s.k, s.k}, w);
    }
    if (s.bias) {
      init("b" + id, {s.c_out}, draw(s.c_out, -0.2f, 0.2f));
      conv_in.push_back("b" + id);
    }
    auto* conv = node("Conv", conv_in, "c" + id);
    if (!dense) {
      if (s.groups != 1) {
        auto* a = conv->add_attribute();
        a->set_name("group");
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(s.groups);
      }
      ints(conv, "dilations", {s.dilation, s.dilation});
    }
    ints(conv, "strides", {s.stride, s.stride});
    ints(conv, "pads", {s.pad, s.pad, s.pad, s.pad});
    h = "c" + id;
    if (s.bn) {
      init("g" + id, {s.c_out}, draw(s.c_out, 0.5f, 1.5f));
      init("be" + id, {s.c_out}, draw(s.c_out, -0.3f, 0.3f));
      init("mu" + id, {s.c_out}, draw(s.c_out, -0.3f, 0.3f));
      init("var" + id, {s.c_out}, draw(s.c_out, 0.5f, 2.f));
      node("BatchNormalization", {h, "g" + id, "be" + id, "mu" + id, "var" + id}, "bn" + id);
      h = "bn" + id;
    }
    if (s.add_prev) h = node("Add", {h, prev}, "add" + id)->output(0);
    if (s.relu) h = node("Relu", {h}, "r" + id)->output(0);
    prev = h;
  }
  node("GlobalAveragePool", {h}, "gap");
  node("Flatten", {"gap"}, "f");
  const int feat = specs.back().c_out;
  init("fc", {kClasses, feat}, draw(int64_t(kClasses) * feat, -0.5f, 0.5f));
  init("fcb", {kClasses}, draw(kClasses, -0.1f, 0.1f));
  auto* gemm = node("Gemm", {"f", "fc", "fcb"}, "y");
  auto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  return m.SerializeAsString();
}

// Logits and d sum(logits * r) / dx through autodiff.
std::pair<Tensor, Tensor> autodiff(Network& net, const Tensor& x, const Tensor& r) {
  Tensor xi = x.detach();
  xi.set_requires_grad(true);
  const Tensor logits = net.logits(xi);
  ops::sum(ops::mul(logits, r)).backward();
  return {logits.detach(), xi.grad()};
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

class OnnxNativeConv : public ::testing::TestWithParam<bool> {
 protected:
  std::vector<ConvSpec> specs() const { return GetParam() ? blocked_net() : plain_net(); }
};

// Each Conv keeps its own weight, [c_out, c_in / groups, k, k]: nothing is expanded.
TEST_P(OnnxNativeConv, WeightsAreKeptAsTheyAre) {
  auto net = load_onnx_bytes(build(specs(), false, 7), "t.onnx");
  std::vector<Shape> got, want;
  for (const auto& [name, t] : net->named_parameters())
    if (t->ndim() == 4) got.push_back(t->shape());
  for (const ConvSpec& s : specs()) want.push_back({s.c_out, s.c_in / s.groups, s.k, s.k});
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

// The frozen network plans every Conv as one fused step with its groups and dilation, and
// the native graph, autodiff or fused, computes the dense expansion's logits and input
// gradients.
TEST_P(OnnxNativeConv, FusedAndEqualToTheDenseExpansion) {
  auto native = load_onnx_bytes(build(specs(), false, 7), "t.onnx");
  auto dense = load_onnx_bytes(build(specs(), true, 7), "dense.onnx");
  const Shape shape{3, specs()[0].c_in, kSize, kSize};
  FrozenNetwork frozen(*native, shape);
  ASSERT_TRUE(frozen.fused()) << frozen.why_unfused();
  const std::string plan = frozen.plan_text();
  EXPECT_EQ(count(plan, "= conv("), specs().size()) << plan;
  for (const ConvSpec& s : specs()) {
    if (s.groups != 1) {
      EXPECT_NE(plan.find("groups " + std::to_string(s.groups)), std::string::npos) << plan;
    }
  }
  EXPECT_NE(plan.find("dilation 2x2"), std::string::npos) << plan;
  if (GetParam()) {
    EXPECT_NE(plan.find("batch_norm+add+relu"), std::string::npos) << plan;
  }

  Generator gen(21);
  const Tensor x = Tensor::uniform(shape, 0.f, 1.f, gen);
  const Tensor r = Tensor::normal({3, kClasses}, 0.f, 1.f, gen);
  const auto [want_logits, want_grad] = autodiff(*dense, x, r);
  const auto [logits, grad] = autodiff(*native, x, r);
  EXPECT_LT(rel_gap(logits, want_logits), 1e-4);
  EXPECT_LT(rel_gap(grad, want_grad), 1e-4);
  EXPECT_LT(rel_gap(frozen.logits(x), want_logits), 1e-4);
  EXPECT_LT(rel_gap(frozen.input_grad(r).clone(), want_grad), 1e-4);
}

// The CUDA lowering of the same plan (cuDNN's grouped and dilated descriptors) against
// the CPU's.
TEST_P(OnnxNativeConv, FusedOnCudaMatchesTheCpu) {
  IPG_REQUIRE_CUDA();
  const std::string bytes = build(specs(), false, 7);
  auto cpu = load_onnx_bytes(bytes, "t.onnx"), gpu = load_onnx_bytes(bytes, "t.onnx");
  gpu->to(Device::cuda());
  const Shape shape{3, specs()[0].c_in, kSize, kSize};
  FrozenNetwork fc(*cpu, shape), fg(*gpu, shape);
  EXPECT_TRUE(fg.fused()) << fg.why_unfused();
  Generator gen(22);
  const Tensor x = Tensor::uniform(shape, 0.f, 1.f, gen);
  const Tensor r = Tensor::normal({3, kClasses}, 0.f, 1.f, gen);
  EXPECT_PARITY(fc.logits(x), fg.logits(x.to(Device::cuda())).cpu(), 1e-3, 1e-3);
  EXPECT_PARITY(fc.input_grad(r).clone(), fg.input_grad(r.to(Device::cuda())).cpu(), 1e-3, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Layouts, OnnxNativeConv, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Blocked" : "Plain"; });

}  // namespace
}  // namespace ipg
