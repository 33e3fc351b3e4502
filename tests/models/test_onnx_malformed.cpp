// The ONNX reader against damaged and hostile files, and single operators against a
// direct computation: graphs built here with libonnx's protobuf classes. Every bad file
// must give one FileError naming the file and what is wrong, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "models/onnx_model.h"
#include "onnx/onnx_pb.h"
#include "tests/support/network_checks.h"
#include "tests/support/onnx_builder.h"

namespace ipg {
namespace {

using testing::kOnnx;

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

using testing::attr_float;
using testing::attr_int;
using testing::attr_ints;
using testing::Builder;

// A valid small classifier: flatten then a Gemm to 3 classes.
Builder classifier() {
  Builder b(1, 2, 2);
  b.node("Flatten", {"x"}, {"f"});
  b.init("W", {3, 4}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1});
  attr_int(b.node("Gemm", {"f", "W"}, {"y"}), "transB", 1);
  return b;
}

using testing::load_error;

#define EXPECT_ERROR(bytes, needle)                                                  \
  do {                                                                               \
    const std::string msg_ = load_error(bytes);                                      \
    EXPECT_NE(msg_.find(needle), std::string::npos) << msg_;                         \
    EXPECT_EQ(msg_.rfind("t.onnx: ", 0), 0u) << msg_;                                \
  } while (0)

TEST(OnnxMalformed, TheValidBaseLoads) {
  auto net = load_onnx_bytes(classifier().bytes(), "t.onnx");
  EXPECT_EQ(net->config().classes, 3);
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 9}, {2, 1, 2, 2});
  NoGradGuard ng;
  EXPECT_EQ(net->logits(x).to_vector(), std::vector<float>({1, 2, 7, 5, 6, 16}));
}

TEST(OnnxMalformed, TruncatedFilesAreRefused) {
  const std::string full = read_bytes(kOnnx + "mobilenet.onnx");
  ASSERT_GT(full.size(), 1000u);
  for (size_t cut : {size_t(0), size_t(1), size_t(7), size_t(100), full.size() / 3,
                     full.size() / 2, full.size() - 200, full.size() - 1}) {
    const std::string msg = load_error(full.substr(0, cut));
    EXPECT_EQ(msg.rfind("t.onnx: ", 0), 0u) << "cut at " << cut << ": " << msg;
  }
  EXPECT_ERROR(std::string("\x08\x07\x12\xff\xff\xff\xff\x0f", 8), "not a valid ONNX model");
  EXPECT_ERROR(std::string(), "not an ONNX model");
}

TEST(OnnxMalformed, WrongInitializerTypesAndSizes) {
  Builder b = classifier();
  b.g->mutable_initializer(0)->set_data_type(onnx::TensorProto::DOUBLE);
  EXPECT_ERROR(b.bytes(), "initializer 'W': element type DOUBLE is not supported");
  b = classifier();
  b.g->mutable_initializer(0)->add_float_data(1.f);
  EXPECT_ERROR(b.bytes(), "13 floats of data for shape [3, 4]");
  b = classifier();
  b.g->mutable_initializer(0)->clear_float_data();
  b.g->mutable_initializer(0)->set_raw_data(std::string(47, '\0'));
  EXPECT_ERROR(b.bytes(), "47 bytes of data");
  b = classifier();
  b.g->mutable_initializer(0)->set_float_data(2, NAN);
  EXPECT_ERROR(b.bytes(), "NaN/Inf");
  b = classifier();  // a weight of the right type and count but the wrong shape
  b.g->mutable_initializer(0)->set_dims(1, 2);
  b.g->mutable_initializer(0)->mutable_float_data()->Truncate(6);
  EXPECT_ERROR(b.bytes(), "node 1 'Gemm_1': weights [3, 2] do not fit the input [1, 4]");
}

// An export with dynamic height and width is read at the size its sidecar gives
// ({"input_shape": [C, H, W]} in <model>.json, or OnnxOptions::input_shape); without one
// the error says how, and a size that contradicts a fixed dimension, an unknown key, or mean
// without std are refused naming the sidecar.
TEST(OnnxMalformed, SymbolicImageSizeFromTheSidecar) {
  Builder b(3, 4, 5);  // global pool to [n, 3, 1, 1], flattened: three "classes"
  auto* dims = b.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  dims->mutable_dim(2)->set_dim_param("h");
  dims->mutable_dim(3)->set_dim_param("w");
  b.node("GlobalAveragePool", {"x"}, {"p"});
  b.node("Flatten", {"p"}, {"y"});
  const auto dir = std::filesystem::temp_directory_path() / "ipg_onnx_symbolic";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.onnx").string();
  std::ofstream(path, std::ios::binary) << b.bytes();
  auto error = [&](const std::string& sidecar) {
    if (sidecar.empty()) std::filesystem::remove(path + ".json");
    else std::ofstream(path + ".json") << sidecar;
    try {
      load_onnx_model(path);
    } catch (const FileError& e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };
  EXPECT_NE(error("").find("dimension 2 is symbolic ('h'): give the image size as {\"input_shape\": [C, H, W]} in " + path + ".json"),
            std::string::npos) << error("");
  std::ofstream(path + ".json") << R"({"input_shape": [3, 7, 6]})";
  auto net = load_onnx_model(path);
  EXPECT_EQ(net->config().in_channels, 3);
  EXPECT_EQ(net->config().height, 7);
  EXPECT_EQ(net->config().width, 6);
  {
    NoGradGuard ng;
    EXPECT_EQ(net->logits(Tensor::ones({2, 3, 7, 6})).shape(), (Shape{2, 3}));
  }
  OnnxOptions given;  // an option given wins over the sidecar
  given.input_shape = {3, 2, 9};
  EXPECT_EQ(load_onnx_model(path, given)->config().width, 9);
  EXPECT_NE(error(R"({"input_shape": [1, 7, 6]})").find("dimension 1 is 3, not the 1 given"), std::string::npos);
  EXPECT_NE(error(R"({"input_shape": [3, 7]})").find("input_shape must be [C, H, W]"), std::string::npos);
  EXPECT_NE(error(R"({"input_size": [3, 7, 6]})").find("m.onnx.json: not a sidecar"), std::string::npos);
  EXPECT_NE(error(R"({"input_size": [3, 7, 6]})").find("unknown key \"input_size\""), std::string::npos);
  EXPECT_NE(error(R"({"mean": [0, 0, 0], "input_shape": [3, 7, 6]})").find("mean and std go together"),
            std::string::npos);
  // mean and std with the size: both taken.
  std::ofstream(path + ".json") << R"({"mean": [0.5, 0.5, 0.5], "std": [2, 2, 2], "input_shape": [3, 7, 6]})";
  EXPECT_EQ(load_onnx_model(path)->config().std, std::vector<float>({2.f, 2.f, 2.f}));
  std::filesystem::remove_all(dir);
}

// A graph that also returns its features has several outputs: the sidecar (or
// OnnxOptions::output) names the logits; without a name, or with one the graph lacks, the
// error lists the graph's outputs.
TEST(OnnxMalformed, SeveralOutputsNeedTheLogitsNamed) {
  Builder b(3, 2, 2);  // y: the pooled channels; feat: the flattened image
  b.node("GlobalAveragePool", {"x"}, {"p"});
  b.node("Flatten", {"p"}, {"y"});
  b.node("Flatten", {"x"}, {"feat"});
  b.g->add_output()->set_name("feat");
  EXPECT_ERROR(b.bytes(), "2 graph outputs ('y', 'feat'); name the logits as {\"output\": \"...\"} in t.onnx.json");
  OnnxOptions named;
  named.output = "y";
  EXPECT_EQ(load_onnx_bytes(b.bytes(), "t.onnx", named)->config().classes, 3);
  named.output = "feat";
  EXPECT_EQ(load_onnx_bytes(b.bytes(), "t.onnx", named)->config().classes, 12);
  named.output = "logits";
  try {
    load_onnx_bytes(b.bytes(), "t.onnx", named);
    ADD_FAILURE() << "loaded with an output the graph lacks";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("no graph output is named 'logits' (the graph's: 'y', 'feat')"),
              std::string::npos) << e.what();
  }
  const auto dir = std::filesystem::temp_directory_path() / "ipg_onnx_outputs";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.onnx").string();
  std::ofstream(path, std::ios::binary) << b.bytes();
  std::ofstream(path + ".json") << R"({"output": "y"})";
  EXPECT_EQ(load_onnx_model(path)->config().classes, 3);
  std::filesystem::remove_all(dir);
}

TEST(OnnxMalformed, HugeDimensions) {
  Builder b = classifier();
  b.g->mutable_initializer(0)->set_dims(0, int64_t(1) << 40);
  EXPECT_ERROR(b.bytes(), "more than");
  // A stored tensor may be as large as a file can hold (VGG's 4096 x 25088 classifier
  // weight has 102.8 million elements): one of 2^27 is refused for its missing data, not
  // for its size, and one past 2^28 (a 1 GiB file's float32s) for its size.
  b = classifier();
  b.g->mutable_initializer(0)->set_dims(0, int64_t(1) << 25);
  EXPECT_ERROR(b.bytes(), "initializer 'W': 12 floats of data for shape [33554432, 4] (134217728 elements)");
  b = classifier();
  b.g->mutable_initializer(0)->set_dims(0, (int64_t(1) << 26) + 1);
  EXPECT_ERROR(b.bytes(), "initializer 'W': shape [67108865, 4] has more than 268435456 elements");
  b = classifier();
  b.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_value(int64_t(1) << 33);
  EXPECT_ERROR(b.bytes(), "implausible image shape");
  b = classifier();  // a ConstantOfShape asking for 2^62 elements
  b.init_i64("big", {int64_t(1) << 31, int64_t(1) << 31});
  b.node("ConstantOfShape", {"big"}, {"c"});
  EXPECT_ERROR(b.bytes(), "node 2 'ConstantOfShape_2': ConstantOfShape: shape [2147483648, 2147483648] has more than");
  b = classifier();  // a Pad of the input by 10^6 rows
  b.init_i64("p", {0, 0, 1000000, 0, 0, 0, 0, 0});
  b.node("Pad", {"x", "p"}, {"q"});
  EXPECT_ERROR(b.bytes(), "out of range");
}

// A small file cannot unfold into gigabytes: constants folded at load may total twice
// the file's weights plus 2^24 elements. Three ConstantOfShape nodes of 2^23 each (32 MiB
// apiece; the file holds 13 numbers) pass the bound at the third, refused before it
// allocates.
TEST(OnnxMalformed, FoldedConstantsAreBounded) {
  Builder b = classifier();
  b.init_i64("s", {int64_t(1) << 23});
  for (const char* out : {"c1", "c2", "c3"}) b.node("ConstantOfShape", {"s"}, {out});
  EXPECT_ERROR(b.bytes(), "node 4 'ConstantOfShape_4': ConstantOfShape: shape [8388608] would take the "
                          "constants folded at load past their limit (26 elements left");
  b = classifier();  // two are within it
  b.init_i64("s", {int64_t(1) << 23});
  for (const char* out : {"c1", "c2"}) b.node("ConstantOfShape", {"s"}, {out});
  EXPECT_EQ(load_onnx_bytes(b.bytes(), "t.onnx")->config().classes, 3);
}

TEST(OnnxMalformed, CyclesAndDanglingNames) {
  Builder b = classifier();
  b.node("Relu", {"b"}, {"a"});
  b.node("Relu", {"a"}, {"b"});
  EXPECT_ERROR(b.bytes(), "the graph has a cycle through this node");
  b = classifier();
  b.node("Relu", {"nowhere"}, {"a"});
  EXPECT_ERROR(b.bytes(), "node 2 'Relu_2': input 'nowhere' is not produced by any node");
  b = classifier();
  b.node("Relu", {"x"}, {"f"});
  EXPECT_ERROR(b.bytes(), "output 'f' is defined twice");
  b = classifier();
  b.g->mutable_output(0)->set_name("z");
  EXPECT_ERROR(b.bytes(), "the graph output 'z' is not produced");
}

TEST(OnnxMalformed, UnsupportedOperatorsAndAttributes) {
  Builder b(1, 2, 2);
  b.node("Relu", {"x"}, {"r"});
  b.node("Resize", {"r"}, {"s"})->set_name("Resize_12");
  b.node("Flatten", {"s"}, {"y"});
  EXPECT_ERROR(b.bytes(), "node 1 'Resize_12': operator Resize is not supported (supported: Add, ");
  b = classifier();
  attr_int(b.g->mutable_node(0), "mystery", 1);
  EXPECT_ERROR(b.bytes(), "node 0 'Flatten_0': attribute 'mystery' is not supported");
  b = classifier();
  b.g->mutable_node(1)->set_domain("com.microsoft");
  EXPECT_ERROR(b.bytes(), "operator com.microsoft.Gemm is not supported");
  b = classifier();
  b.m.mutable_opset_import(0)->set_version(99);
  EXPECT_ERROR(b.bytes(), "opset 99");
  b = classifier();  // a graph ending in images, not logits
  b.g->mutable_node(1)->set_op_type("Relu");
  b.g->mutable_node(1)->clear_attribute();
  b.g->mutable_node(1)->mutable_input()->RemoveLast();
  b.g->mutable_node(1)->set_input(0, "x");
  EXPECT_ERROR(b.bytes(), "is not [n, classes] logits");
  b = Builder(1, 1, 1);  // one logit per row names no class
  b.node("Flatten", {"x"}, {"y"});
  EXPECT_ERROR(b.bytes(), "the output has 1 logit per row: a classifier needs at least 2 classes");
  b = classifier();  // the weight as a graph input without a value: export_params=False
  auto* w = b.g->add_input();
  w->set_name("W2");
  w->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  EXPECT_ERROR(b.bytes(), "exported without its parameters?");
}

// The activations written through relu (LeakyRelu, PRelu, Elu, Selu) against their
// formulas, each with its attributes; a PRelu slope that does not broadcast to the input
// and a LogSoftmax that does not compute the output are refused by name.
TEST(OnnxReaderOps, LeakyActivationsAndTheirRefusals) {
  const std::vector<float> x = {-2.f, -0.5f, 0.f, 1.5f};
  auto through = [&](const char* op, const std::function<void(Builder&, onnx::NodeProto*)>& set) {
    Builder b(1, 2, 2);
    auto* n = b.node(op, {"x"}, {"a"});
    set(b, n);
    b.node("Flatten", {"a"}, {"y"});
    auto net = load_onnx_bytes(b.bytes(), "t.onnx");
    NoGradGuard ng;
    return net->logits(Tensor::from_vector(x, {1, 1, 2, 2})).to_vector();
  };
  auto expect = [&](const std::vector<float>& got, double (*f)(double)) {
    ASSERT_EQ(got.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(got[i], f(x[i]), 1e-6) << "x " << x[i];
  };
  expect(through("LeakyRelu", [](Builder&, onnx::NodeProto* n) { attr_float(n, "alpha", 0.2f); }),
         [](double v) { return v > 0 ? v : 0.2 * v; });
  expect(through("LeakyRelu", [](Builder&, onnx::NodeProto*) {}),  // ONNX's default 0.01
         [](double v) { return v > 0 ? v : 0.01 * v; });
  expect(through("PRelu", [](Builder& b, onnx::NodeProto* n) {
           b.init("s", {1, 1, 1}, {0.3f});
           n->add_input("s");
         }),
         [](double v) { return v > 0 ? v : 0.3 * v; });
  expect(through("Elu", [](Builder&, onnx::NodeProto* n) { attr_float(n, "alpha", 0.7f); }),
         [](double v) { return v > 0 ? v : 0.7 * std::expm1(v); });
  expect(through("Selu", [](Builder&, onnx::NodeProto*) {}), [](double v) {
    return 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * std::expm1(v));
  });
  Builder b(1, 2, 2);
  b.init("s", {2, 1, 1}, {0.1f, 0.2f});  // two slopes, one channel
  b.node("PRelu", {"x", "s"}, {"a"});
  b.node("Flatten", {"a"}, {"y"});
  EXPECT_ERROR(b.bytes(), "slope [2, 1, 1] does not broadcast to the input");
  b = Builder(1, 2, 2);
  b.node("LogSoftmax", {"x"}, {"a"});
  b.node("Flatten", {"a"}, {"y"});
  EXPECT_ERROR(b.bytes(), "LogSoftmax is supported only where it computes the graph's output");
}

// A pool of a 1x1 window at stride 1 (AlexNet's and VGG's adaptive pool at 224x224) and a
// Pad of nothing (PyTorch's export of an unpadded average pool that counts padding) pass
// their input through: the same logits as without them, and the planner fuses the network.
TEST(OnnxReaderOps, IdentityPoolsAndPadsLeaveNothingToRun) {
  auto build = [](bool extra) {
    Builder b(2, 4, 4);
    Generator gen(5);
    b.init("W", {3, 2, 3, 3}, Tensor::normal({3, 2, 3, 3}, 0.f, 1.f, gen).to_vector());
    b.node("Conv", {"x", "W"}, {"c"});
    b.node("Relu", {"c"}, {"r"});
    std::string at = "r";
    if (extra) {
      auto* p = b.node("MaxPool", {"r"}, {"m"});
      attr_ints(p, "kernel_shape", {1, 1});
      attr_ints(b.node("AveragePool", {"m"}, {"a"}), "kernel_shape", {1, 1});
      b.init_i64("pads", {0, 0, 0, 0, 0, 0, 0, 0});
      b.node("Pad", {"a", "pads"}, {"z"});
      at = "z";
    }
    b.node("Flatten", {at}, {"y"});
    return load_onnx_bytes(b.bytes(), "t.onnx");
  };
  auto plain = build(false), with = build(true);
  Generator gen(6);
  const Tensor x = Tensor::uniform({3, 2, 4, 4}, 0.f, 1.f, gen);
  {
    NoGradGuard ng;
    EXPECT_EQ(with->logits(x).to_vector(), plain->logits(x).to_vector());
  }
  FrozenNetwork frozen(*with, x.shape());
  EXPECT_TRUE(frozen.fused()) << frozen.why_unfused();
}

// Transpose, Slice and Concat of values computed from the input (ShuffleNet, a flip, a
// wrap-around pad) keep the batch dimension first and whole: whatever would move or cut it
// is refused by name.
TEST(OnnxReaderOps, RuntimeDataMovementKeepsTheBatch) {
  auto graph = [](const std::function<void(Builder&)>& body) {
    Builder b(1, 2, 3);
    body(b);
    b.node("Flatten", {"a"}, {"y"});
    return b.bytes();
  };
  auto slice = [](Builder& b, std::vector<int64_t> starts, std::vector<int64_t> ends,
                  std::vector<int64_t> axes, std::vector<int64_t> steps) {
    b.init_i64("s0", starts);
    b.init_i64("s1", ends);
    b.init_i64("s2", axes);
    b.init_i64("s3", steps);
    b.node("Slice", {"x", "s0", "s1", "s2", "s3"}, {"a"});
  };
  // Columns 2, 1, 0 of a 2x3 image: a flip of its rows' elements, then flattened.
  auto net = load_onnx_bytes(graph([&](Builder& b) { slice(b, {-1}, {INT64_MIN}, {3}, {-1}); }), "t.onnx");
  {
    NoGradGuard ng;
    EXPECT_EQ(net->logits(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3})).to_vector(),
              std::vector<float>({3, 2, 1, 6, 5, 4}));
  }
  EXPECT_ERROR(graph([&](Builder& b) { slice(b, {0}, {1}, {0}, {1}); }),
               "a slice of the batch dimension is not supported");
  EXPECT_ERROR(graph([&](Builder& b) { slice(b, {2}, {2}, {3}, {1}); }), "the slice of axis 3 is empty");
  EXPECT_ERROR(graph([&](Builder& b) { slice(b, {0}, {2}, {3}, {0}); }), "a slice step is 0");
  EXPECT_ERROR(graph([](Builder& b) { attr_ints(b.node("Transpose", {"x"}, {"a"}), "perm", {1, 0, 2, 3}); }),
               "perm [1, 0, 2, 3] moves the batch dimension");
  EXPECT_ERROR(graph([](Builder& b) { b.node("Transpose", {"x"}, {"a"}); }),
               "a Transpose without perm would move the batch dimension");
  EXPECT_ERROR(graph([](Builder& b) { attr_ints(b.node("Transpose", {"x"}, {"a"}), "perm", {0, 2, 2, 3}); }),
               "perm repeats an axis");
  EXPECT_ERROR(graph([](Builder& b) { attr_int(b.node("Concat", {"x", "x"}, {"a"}), "axis", 0); }),
               "only concatenation along a dimension after the batch is supported");
}

// Squeeze and Unsqueeze of values computed from the input (a head's squeeze after a global
// pool): reshapes that keep the batch first; the batch dimension itself, or a squeezed
// dimension that is not 1, is refused. ReduceSum over the plane (a head's sum pooling).
TEST(OnnxReaderOps, SqueezeUnsqueezeAndReduceSumOfRuntimeValues) {
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {1, 3, 2, 2});
  auto logits = [&](const Builder& b) {
    auto net = load_onnx_bytes(b.bytes(), "t.onnx");
    NoGradGuard ng;
    return net->logits(x).to_vector();
  };
  const std::vector<float> means = {2.5f, 6.5f, 10.5f};  // each channel's mean
  for (bool axes_input : {true, false}) {  // opset 13's input, or the older attribute
    Builder b(3, 2, 2);
    b.node("GlobalAveragePool", {"x"}, {"p"});
    auto* sq = b.node("Squeeze", {"p"}, {"y"});
    if (axes_input) {
      b.init_i64("ax", {-1, 2});
      sq->add_input("ax");
    } else {
      b.m.mutable_opset_import(0)->set_version(11);
      attr_ints(sq, "axes", {-1, 2});
    }
    EXPECT_EQ(logits(b), means);
  }
  Builder all(3, 2, 2);  // no axes: every dimension of 1 but the batch's
  all.node("GlobalAveragePool", {"x"}, {"p"});
  all.node("Squeeze", {"p"}, {"y"});
  EXPECT_EQ(logits(all), means);
  Builder un(3, 2, 2);  // [n, 3] -> [n, 1, 3] -> flatten
  un.node("GlobalAveragePool", {"x"}, {"p"});
  un.node("Flatten", {"p"}, {"f"});
  un.init_i64("ax", {1});
  un.node("Unsqueeze", {"f", "ax"}, {"u"});
  un.node("Flatten", {"u"}, {"y"});
  EXPECT_EQ(logits(un), means);
  Builder batch(3, 2, 2);
  batch.node("GlobalAveragePool", {"x"}, {"p"});
  batch.init_i64("ax", {0, 2, 3});
  batch.node("Squeeze", {"p", "ax"}, {"y"});
  EXPECT_ERROR(batch.bytes(), "Squeeze of the batch dimension is not supported");
  Builder wide(3, 2, 2);
  wide.init_i64("ax", {1});
  wide.node("Squeeze", {"x", "ax"}, {"s"});
  wide.node("Flatten", {"s"}, {"y"});
  EXPECT_ERROR(wide.bytes(), "dimension 1 of [1, 3, 2, 2] is not 1");
  // ReduceSum over the plane (axes as opset 13's input, or the attribute before): the sums.
  for (bool axes_input : {true, false}) {
    Builder b(3, 2, 2);
    auto* rs = b.node("ReduceSum", {"x"}, {"y"});
    attr_int(rs, "keepdims", 0);
    if (axes_input) {
      b.init_i64("ax", {2, 3});
      rs->add_input("ax");
    } else {
      b.m.mutable_opset_import(0)->set_version(11);
      attr_ints(rs, "axes", {-2, -1});
    }
    EXPECT_EQ(logits(b), (std::vector<float>{10, 26, 42}));
  }
  // Over other axes: the channels at each pixel, every axis but the batch.
  Builder chan(3, 2, 2);
  chan.init_i64("ax", {1});
  attr_int(chan.node("ReduceSum", {"x", "ax"}, {"s"}), "keepdims", 0);
  chan.node("Flatten", {"s"}, {"y"});
  EXPECT_EQ(logits(chan), (std::vector<float>{15, 18, 21, 24}));
  Builder most(3, 2, 2);
  attr_ints(most.node("ReduceMean", {"x"}, {"s"}), "axes", {-1, 1});  // [n, 1, 2, 1]
  most.node("Flatten", {"s"}, {"y"});
  EXPECT_EQ(logits(most), (std::vector<float>{5.5f, 7.5f}));  // 1 + 4c + 2h + w averaged over c, w
  Builder batch_sum(3, 2, 2);
  batch_sum.init_i64("ax", {0});
  batch_sum.node("ReduceSum", {"x", "ax"}, {"y"});
  EXPECT_ERROR(batch_sum.bytes(), "a sum over the batch dimension is not supported");
  Builder every(3, 2, 2);  // no axes: all of them
  every.node("ReduceMean", {"x"}, {"y"});
  EXPECT_ERROR(every.bytes(), "a mean over the batch dimension is not supported");
}

// ConvNeXt's pieces: a LayerNorm over the channels of [n, h, w, c] written out (Transpose,
// ReduceMean over the last axis, Sub, Pow 2, Sqrt, Div), a MatMul of that rank-4 value with
// constant weights (a linear layer per pixel), Reciprocal; each against its formula.
TEST(OnnxReaderOps, LayerNormPiecesAndAPixelwiseLinear) {
  const std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const Tensor x = Tensor::from_vector(v, {1, 3, 2, 2});
  auto logits = [&](const Builder& b) {
    auto net = load_onnx_bytes(b.bytes(), "t.onnx");
    NoGradGuard ng;
    return net->logits(x).to_vector();
  };
  Builder ln(3, 2, 2);
  attr_ints(ln.node("Transpose", {"x"}, {"t"}), "perm", {0, 2, 3, 1});  // [n, 2, 2, 3]
  attr_ints(ln.node("ReduceMean", {"t"}, {"m"}), "axes", {-1});
  ln.node("Sub", {"t", "m"}, {"d"});
  ln.init("two", {}, {2.f});
  ln.node("Pow", {"d", "two"}, {"d2"});
  attr_ints(ln.node("ReduceMean", {"d2"}, {"var"}), "axes", {-1});
  ln.init("eps", {}, {1e-6f});
  ln.node("Add", {"var", "eps"}, {"ve"});
  ln.node("Sqrt", {"ve"}, {"sd"});
  ln.node("Div", {"d", "sd"}, {"z"});
  ln.init("W", {3, 2}, {1, 0, 0, 1, 1, 1});  // out = (z0 + z2, z1 + z2)
  ln.node("MatMul", {"z", "W"}, {"l"});       // [n, 2, 2, 2]
  ln.node("Flatten", {"l"}, {"y"});
  const std::vector<float> got = logits(ln);
  ASSERT_EQ(got.size(), 8u);
  // At each pixel the channels are p + 1, p + 5, p + 9: normalized -a, 0, a whatever p is.
  const double a = 4.0 / std::sqrt(32.0 / 3.0 + 1e-6);
  for (int p = 0; p < 4; ++p) {
    EXPECT_NEAR(got[size_t(2 * p)], -a + a, 1e-6) << p;
    EXPECT_NEAR(got[size_t(2 * p + 1)], 0 + a, 1e-6) << p;
  }
  Builder rec(3, 2, 2);
  rec.node("Reciprocal", {"x"}, {"r"});
  rec.node("Flatten", {"r"}, {"y"});
  const std::vector<float> inv = logits(rec);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(inv[i], 1.f / v[i]);
  Builder cube(3, 2, 2);
  cube.init("e", {}, {3.f});
  cube.node("Pow", {"x", "e"}, {"c"});
  cube.node("Flatten", {"c"}, {"y"});
  const std::vector<float> cubes = logits(cube);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(cubes[i], v[i] * v[i] * v[i]);
  Builder odd(3, 2, 2);
  odd.init("e", {}, {1.5f});
  odd.node("Pow", {"x", "e"}, {"c"});
  odd.node("Flatten", {"c"}, {"y"});
  EXPECT_ERROR(odd.bytes(), "exponent 1.500000 is not supported (1, 2, 3 and 0.5 are)");
  Builder in(3, 2, 2);  // one scale per channel
  in.init("sc", {2}, {1.f, 1.f});
  in.init("bi", {3}, {0.f, 0.f, 0.f});
  in.node("InstanceNormalization", {"x", "sc", "bi"}, {"n"});
  in.node("Flatten", {"n"}, {"y"});
  EXPECT_ERROR(in.bytes(), "scale must be float [3]");
  Builder lnx(3, 2, 2);  // LayerNormalization over the channels of NCHW: not the last axis
  lnx.init("sc", {3}, {1.f, 1.f, 1.f});
  attr_int(lnx.node("LayerNormalization", {"x", "sc"}, {"n"}), "axis", 1);
  lnx.node("Flatten", {"n"}, {"y"});
  EXPECT_ERROR(lnx.bytes(), "only a normalization over the last axis is supported");
  // Softmax over axis 1 of [n, 3, 2, 2]: from opset 13 over the channels at each pixel;
  // before, over the 12 values of each image flattened.
  for (int opset : {13, 11}) {
    SCOPED_TRACE("opset " + std::to_string(opset));
    Builder mid(3, 2, 2);
    mid.m.mutable_opset_import(0)->set_version(opset);
    attr_int(mid.node("Softmax", {"x"}, {"s"}), "axis", 1);
    mid.node("Flatten", {"s"}, {"y"});
    const std::vector<float> got = logits(mid);
    ASSERT_EQ(got.size(), 12u);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 4; ++p) {
        double sum = 0;  // over the channels at pixel p, or over everything
        for (int c2 = 0; c2 < 3; ++c2)
          for (int p2 = 0; p2 < 4; ++p2)
            if (opset == 11 || p2 == p) sum += std::exp(v[size_t(c2 * 4 + p2)] - 12.0);
        EXPECT_NEAR(got[size_t(c * 4 + p)], std::exp(v[size_t(c * 4 + p)] - 12.0) / sum, 1e-6);
      }
  }
  Builder across(3, 2, 2);
  attr_int(across.node("Softmax", {"x"}, {"s"}), "axis", 0);
  across.node("Flatten", {"s"}, {"y"});
  EXPECT_ERROR(across.bytes(), "a softmax across the batch dimension is not supported");
}

// Grouped, dilated, strided, "same"-padded convolution against a direct loop. The
// columns' total padding is odd (3: SAME_UPPER puts 1 before, 2 after).
TEST(OnnxReaderOps, GroupedDilatedSamePaddedConv) {
  const int c = 4, h = 7, w = 6, m = 6, g = 2, k = 3, d = 2, s = 2, oh = 4, ow = 3;
  Builder b(c, h, w);
  Generator gen(3);
  const Tensor wt = Tensor::normal({m, c / g, k, k}, 0.f, 1.f, gen);
  const Tensor bias = Tensor::normal({m}, 0.f, 1.f, gen);
  b.init("W", {m, c / g, k, k}, wt.to_vector());
  b.init("B", {m}, bias.to_vector());
  auto* conv = b.node("Conv", {"x", "W", "B"}, {"c"});
  attr_int(conv, "group", g);
  attr_ints(conv, "dilations", {d, d});
  attr_ints(conv, "strides", {s, s});
  auto* ap = conv->add_attribute();
  ap->set_name("auto_pad");
  ap->set_type(onnx::AttributeProto::STRING);
  ap->set_s("SAME_UPPER");
  b.node("Flatten", {"c"}, {"y"});
  auto net = load_onnx_bytes(b.bytes(), "t.onnx");
  const Tensor x = Tensor::normal({2, c, h, w}, 0.f, 1.f, gen);
  Tensor y;
  {
    NoGradGuard ng;
    y = net->logits(x);
  }
  ASSERT_EQ(y.shape(), Shape({2, int64_t(m) * oh * ow}));
  const auto xv = x.to_vector(), wv = wt.to_vector(), bv = bias.to_vector(), yv = y.to_vector();
  const int pad_top = 2, pad_left = 1;  // totals (4-1)*2+5-7 = 4 and (3-1)*2+5-6 = 3
  double worst = 0;
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < m; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          double acc = bv[size_t(o)];
          for (int ci = 0; ci < c / g; ++ci)
            for (int a = 0; a < k; ++a)
              for (int e = 0; e < k; ++e) {
                const int ii = i * s - pad_top + a * d, jj = j * s - pad_left + e * d;
                if (ii < 0 || ii >= h || jj < 0 || jj >= w) continue;
                const int cin = (o / (m / g)) * (c / g) + ci;
                acc += double(wv[size_t(((o * (c / g) + ci) * k + a) * k + e)]) *
                     xv[size_t(((n * c + cin) * h + ii) * w + jj)];
              }
          worst = std::max(worst, std::fabs(acc - yv[size_t(((n * m + o) * oh + i) * ow + j)]));
        }
  EXPECT_LT(worst, 1e-4);
}

// Gemm without transB, with alpha and beta, and a MatMul: y = alpha x B + beta C.
TEST(OnnxReaderOps, GemmAlphaBetaAndMatMul) {
  Builder b(1, 1, 3);
  b.node("Flatten", {"x"}, {"f"});
  b.init("B", {3, 2}, {1, 2, 3, 4, 5, 6});
  b.init("C", {2}, {10, 20});
  auto* gm = b.node("Gemm", {"f", "B", "C"}, {"g"});
  auto* al = gm->add_attribute();
  al->set_name("alpha");
  al->set_type(onnx::AttributeProto::FLOAT);
  al->set_f(2.f);
  auto* be = gm->add_attribute();
  be->set_name("beta");
  be->set_type(onnx::AttributeProto::FLOAT);
  be->set_f(0.5f);
  b.init("M", {2, 2}, {1, 0, 1, -1});
  b.node("MatMul", {"g", "M"}, {"y"});
  auto net = load_onnx_bytes(b.bytes(), "t.onnx");
  NoGradGuard ng;
  // x = [1, 2, 3]: x B = [22, 28]; 2 x B + 0.5 C = [49, 66]; times M = [115, -66].
  EXPECT_EQ(net->logits(Tensor::from_vector({1, 2, 3}, {1, 1, 1, 3})).to_vector(),
            std::vector<float>({115, -66}));
}

// A flatten exported with a fixed batch of 1 is a Reshape to [1, -1]: the 1 is the batch,
// so other batch sizes run; with a symbolic batch that shape is refused.
TEST(OnnxReaderOps, ReshapeWithTheDeclaredBatch) {
  Builder b(1, 1, 3);
  b.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(1);
  b.init_i64("s", {1, -1});
  b.node("Reshape", {"x", "s"}, {"y"});
  auto net = load_onnx_bytes(b.bytes(), "t.onnx");
  NoGradGuard ng;
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const Tensor y = net->logits(Tensor::from_vector(x, {2, 1, 1, 3}));
  EXPECT_EQ(y.shape(), Shape({2, 3}));
  EXPECT_EQ(y.to_vector(), x);
  b.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_param("n");
  EXPECT_ERROR(b.bytes(), "the shape [1, -1] does not keep the batch dimension first");
}

}  // namespace
}  // namespace ipg
