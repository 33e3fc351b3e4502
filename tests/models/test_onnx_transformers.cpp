// Vision transformers as ONNX targets (tests/golden/make_onnx_transformers.py): torchvision's
// ViT and Swin against PyTorch's goldens at every batch size from 1 to 10, read per batch
// size (their exports reshape the batch into the attention heads with shape arithmetic);
// small graphs for what that reading rests on: a batch moved between dimensions and
// multiplied into them, a graph that mixes its rows refused, and the constant operators
// the transformers' masks and tokens are made of, folded at load.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "models/frozen_network.h"
#include "models/model_file.h"
#include "models/onnx_model.h"
#include "tests/support/network_checks.h"
#include "tests/support/onnx_builder.h"
#include "tests/support/onnx_golden.h"

namespace ipg {
namespace {

using testing::attr_int;
using testing::attr_ints;
using testing::Builder;
using testing::kOnnx;
using testing::load_error;
using testing::rel_gap;

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Rows `pick` of x (dimension 0).
Tensor rows(const Tensor& x, const std::vector<int64_t>& pick) {
  std::vector<float> v;
  for (int64_t r : pick) {
    const auto row = x.narrow0(r, 1).to_vector();
    v.insert(v.end(), row.begin(), row.end());
  }
  Shape s = x.shape();
  s[0] = int64_t(pick.size());
  return Tensor::from_vector(v, s);
}

TEST(OnnxTransformers, VitAndSwinMatchPyTorchAtEveryBatchSize) {
  struct Case {
    const char* name;
    std::vector<const char*> ops;  // in the export: what the reading has to take
  };
  for (const Case& c : {Case{"vit", {"Expand", "Where", "Equal", "MatMul", "Erf", "Gather"}},
                        Case{"swin", {"ScatterND", "Range", "Mod", "Not", "Pad", "Dropout"}}}) {
    SCOPED_TRACE(c.name);
    const std::string path = kOnnx + c.name + ".onnx";
    const std::string bytes = file_bytes(path);
    for (const char* op : c.ops) EXPECT_NE(bytes.find(op), std::string::npos) << "no " << op << " node";
    const testing::OnnxGolden g = testing::read_onnx_golden(c.name);
    auto net = load_model(path);
    testing::expect_matches_golden(*net, g);
    // Batches of 1 to 10 rows (more sizes than the network keeps built: the first ones
    // are built again) give each row the golden's logits.
    NoGradGuard ng;
    for (int64_t n = 1; n <= 10; ++n) {
      std::vector<int64_t> pick;
      for (int64_t i = 0; i < n; ++i) pick.push_back((i * 3 + n) % 4);
      EXPECT_LT(rel_gap(net->logits(rows(g.x, pick)), rows(g.logits, pick)), 1e-4) << n << " rows";
    }
  }
}

// The fingerprint loop takes them through autodiff (the planner does not lower a batched
// product) and says so, with PyTorch's logits and input gradients.
TEST(OnnxTransformers, FrozenNetworkRunsThemThroughAutodiff) {
  for (const char* name : {"vit", "swin"}) {
    SCOPED_TRACE(name);
    const testing::OnnxGolden g = testing::read_onnx_golden(name);
    auto net = load_model(kOnnx + name + ".onnx");
    FrozenNetwork frozen(*net, g.x.shape());
    EXPECT_FALSE(frozen.fused());
    EXPECT_FALSE(frozen.why_unfused().empty());
    EXPECT_LT(rel_gap(frozen.logits(g.x), g.logits), 1e-4);
    EXPECT_LT(rel_gap(frozen.input_grad(g.r).clone(), g.grad_x), 1e-4);
  }
}

// The same ViT exported with its batch fixed at 1 (torch.onnx.export's default): its
// shapes hold the 1 as a number, so images run one at a time through the one-row graph,
// with a notice that says why and how to export it for batches.
TEST(OnnxTransformers, AnExportWithItsBatchFixedAtOneRunsImagesOneAtATime) {
  std::vector<std::string> notices;
  const auto old = h5::set_notice_sink([&](const std::string& s) { notices.push_back(s); });
  auto net = load_model(kOnnx + "vit-batch1.onnx");
  h5::set_notice_sink(old);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("fixes its batch at 1"), std::string::npos) << notices[0];
  EXPECT_NE(notices[0].find("dynamic_axes"), std::string::npos) << notices[0];
  // Its nodes have no names (make_onnx_transformers.py drops them): told by their operator.
  EXPECT_NE(notices[0].find("(Concat): every input must be computed from the input"), std::string::npos)
      << notices[0];
  testing::expect_matches_golden(*net, testing::read_onnx_golden("vit"));
}

// Scalar integer constants.
void scalar(Builder& b, const std::string& name, int64_t v) {
  attr_int(b.node("Constant", {}, {name}), "value_int", v);
}

// x [n, 1, 2, 3] as attention moves it: reshaped to [2n, 1, 3] by arithmetic on the batch
// size (Shape, Gather, Mul), a batched product of two computed values h h^T per half row,
// the batch moved to dimension 1 and back, then [n, 6]: y = h (h . h) + h per half row h.
Builder attention_like() {
  Builder b(1, 2, 3);
  b.node("Shape", {"x"}, {"s"});
  scalar(b, "zero", 0);
  scalar(b, "two", 2);
  b.node("Gather", {"s", "zero"}, {"n"});
  b.node("Mul", {"n", "two"}, {"n2"});
  b.init_i64("ax0", {0});
  b.node("Unsqueeze", {"n2", "ax0"}, {"n2v"});
  b.init_i64("rest", {1, 3});
  attr_int(b.node("Concat", {"n2v", "rest"}, {"shape"}), "axis", 0);
  b.node("Reshape", {"x", "shape"}, {"h"});                                     // [2n, 1, 3]
  attr_ints(b.node("Transpose", {"h"}, {"ht"}), "perm", {0, 2, 1});             // [2n, 3, 1]
  b.node("MatMul", {"h", "ht"}, {"dot"});                                       // [2n, 1, 1]
  b.node("Mul", {"h", "dot"}, {"hd"});
  attr_ints(b.node("Transpose", {"h"}, {"moved"}), "perm", {1, 0, 2});          // [1, 2n, 3]
  attr_ints(b.node("Transpose", {"moved"}, {"back"}), "perm", {1, 0, 2});
  b.node("Add", {"hd", "back"}, {"sum"});
  b.init_i64("flat", {-1, 6});
  b.node("Reshape", {"sum", "flat"}, {"y"});
  return b;
}

TEST(OnnxPerBatch, TheBatchMovedAndMultipliedIntoDimensions) {
  auto net = load_onnx_bytes(attention_like().bytes(), "t.onnx");
  EXPECT_EQ(net->config().classes, 6);
  Generator gen(3);
  for (int64_t n : {1, 2, 5, 3, 4, 6, 7, 8, 9, 10, 1, 2}) {
    SCOPED_TRACE(std::to_string(n) + " rows");
    Tensor x = Tensor::uniform({n, 1, 2, 3}, -1.f, 1.f, gen);
    x.set_requires_grad(true);
    const Tensor y = net->logits(x);
    ASSERT_EQ(y.shape(), (Shape{n, 6}));
    ops::sum(y).backward();
    const auto xv = x.detach().to_vector(), yv = y.detach().to_vector(), gv = x.grad().to_vector();
    for (int64_t half = 0; half < 2 * n; ++half) {
      const float* h = &xv[size_t(half * 3)];
      const double dot = double(h[0]) * h[0] + double(h[1]) * h[1] + double(h[2]) * h[2];
      const double sum = double(h[0]) + h[1] + h[2];
      for (int j = 0; j < 3; ++j) {
        EXPECT_NEAR(yv[size_t(half * 3 + j)], h[j] * dot + h[j], 1e-5);
        // d/dh_j of sum_i (h_i (h . h) + h_i) = (h . h) + 2 h_j sum(h) + 1
        EXPECT_NEAR(gv[size_t(half * 3 + j)], dot + 2 * h[j] * sum + 1, 1e-4);
      }
    }
  }
}


// A softmax across the batch (moved to dimension 1 and back) makes each row's logits
// depend on the others: read per batch size it runs, so the loader's check of three rows
// together against each alone refuses it, after the reason the symbolic reading gave.
TEST(OnnxPerBatch, AGraphThatMixesItsRowsIsRefused) {
  Builder b(1, 2, 3);
  attr_ints(b.node("Transpose", {"x"}, {"t"}), "perm", {1, 0, 2, 3});
  attr_int(b.node("Softmax", {"t"}, {"s"}), "axis", 1);
  attr_ints(b.node("Transpose", {"s"}, {"u"}), "perm", {1, 0, 2, 3});
  b.node("Flatten", {"u"}, {"y"});
  const std::string msg = load_error(b.bytes());
  EXPECT_EQ(msg.rfind("t.onnx: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("perm [1, 0, 2, 3] moves the batch dimension"), std::string::npos) << msg;
  EXPECT_NE(msg.find("it mixes the rows of a batch"), std::string::npos) << msg;
  // The same graph without the softmax keeps its rows apart, and loads.
  Builder ok(1, 2, 3);
  attr_ints(ok.node("Transpose", {"x"}, {"t"}), "perm", {1, 0, 2, 3});
  attr_ints(ok.node("Transpose", {"t"}, {"u"}), "perm", {1, 0, 2, 3});
  ok.node("Flatten", {"u"}, {"y"});
  EXPECT_EQ(load_error(ok.bytes()), "(loaded)");
}

// The constant operators of Swin's mask and the ViT's class token, folded at load:
// Range, Mod (the divisor's sign, as Python's %), Equal, Not, Cast to bool, Where,
// ScatterND, Expand and a bool initializer, added to the flattened input.
TEST(OnnxPerBatch, ConstantMasksFoldAtLoad) {
  Builder b(1, 2, 3);
  scalar(b, "m1", -1);
  scalar(b, "five", 5);
  scalar(b, "one", 1);
  scalar(b, "three", 3);
  scalar(b, "zero", 0);
  b.node("Range", {"m1", "five", "one"}, {"r"});       // [-1, 0, 1, 2, 3, 4]
  b.node("Mod", {"r", "three"}, {"m"});                // [2, 0, 1, 2, 0, 1]
  b.node("Equal", {"m", "zero"}, {"e"});               // [0, 1, 0, 0, 1, 0]
  b.node("Not", {"e"}, {"ne"});                        // [1, 0, 1, 1, 0, 1]
  attr_int(b.node("Cast", {"m"}, {"cb"}), "to", onnx::TensorProto::BOOL);  // as ne
  b.init("ten", {}, {10.f});
  b.init("onef", {}, {1.f});
  b.node("Where", {"cb", "ten", "onef"}, {"w"});       // [10, 1, 10, 10, 1, 10]
  auto* idx = b.g->add_initializer();
  idx->set_name("idx");
  idx->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : {2, 1}) idx->add_dims(d);
  for (int64_t v : {0, -1}) idx->add_int64_data(v);
  b.init("upd", {2}, {100.f, 200.f});
  b.node("ScatterND", {"w", "idx", "upd"}, {"sc"});    // [100, 1, 10, 10, 1, 200]
  b.init("half", {1}, {0.5f});
  b.init_i64("six", {6});
  b.node("Expand", {"half", "six"}, {"h"});            // [0.5] * 6
  b.node("Where", {"ne", "sc", "h"}, {"mask"});        // [100, .5, 10, 10, .5, 200]
  auto* keep = b.g->add_initializer();
  keep->set_name("keep");
  keep->set_data_type(onnx::TensorProto::BOOL);
  keep->add_dims(6);
  for (int v : {1, 1, 1, 1, 1, 0}) keep->add_int32_data(v);
  b.init("seven", {}, {7.f});
  b.node("Where", {"keep", "mask", "seven"}, {"bias"});  // [100, .5, 10, 10, .5, 7]
  attr_int(b.node("Cast", {"m"}, {"mf"}), "to", onnx::TensorProto::FLOAT);
  b.node("Add", {"bias", "mf"}, {"bias2"});            // + [2, 0, 1, 2, 0, 1]
  b.node("Flatten", {"x"}, {"f"});
  b.node("Add", {"f", "bias2"}, {"y"});
  auto net = load_onnx_bytes(b.bytes(), "t.onnx");
  NoGradGuard ng;
  const Tensor y = net->logits(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3}));
  EXPECT_EQ(y.to_vector(), std::vector<float>({103, 2.5f, 14, 16, 5.5f, 14}));
  // Refusals name what they do not take.
  Builder fm(1, 2, 3);
  scalar(fm, "three", 3);
  fm.init_i64("r", {4, 5});
  attr_int(fm.node("Mod", {"r", "three"}, {"m"}), "fmod", 1);
  fm.node("Flatten", {"x"}, {"y"});
  EXPECT_NE(load_error(fm.bytes()).find("Mod with fmod 1 is not supported"), std::string::npos);
}

}  // namespace
}  // namespace ipg
