// ONNX models (models/onnx_model.h): our architectures exported by torch.onnx.export from
// their PyTorch twins agree with the HDF5 path; a MobileNetV2-style network not in our zoo
// matches PyTorch's goldens (labels, logits, input gradients); the frozen network runs the
// ONNX graphs (fused where the planner lowers every op, autodiff where not); a final
// Softmax is dropped; the activations besides ReLU (LeakyReLU, PReLU, ELU, GELU, SELU, Tanh)
// match PyTorch's goldens and a final LogSoftmax is dropped; the normalization sidecar;
// detection by content.
// Files: tests/data/onnx/, made by tests/golden/make_onnx_golden.py and
// make_onnx_activations.py.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/onnx_model.h"
#include "tests/support/network_checks.h"
#include "tests/support/onnx_golden.h"

namespace ipg {
namespace {

using testing::rel_gap;
using testing::input_grad;
using testing::kOnnx;

const std::string kWeights = std::string(IPG_TEST_DATA_DIR) + "/../../weights/";

class OnnxArch : public ::testing::TestWithParam<const char*> {};

TEST_P(OnnxArch, AgreesWithTheHdf5Twin) {
  const std::string arch = GetParam();
  auto h5 = load_model(kWeights + arch + "-fashion-mnist.h5");
  auto onnx = load_model(kOnnx + arch + "-fashion-mnist.onnx");
  EXPECT_EQ(onnx->arch(), kOnnxArch);
  const ModelConfig &a = h5->config(), &b = onnx->config();
  EXPECT_EQ(std::vector<int>({a.in_channels, a.height, a.width, a.classes}),
            std::vector<int>({b.in_channels, b.height, b.width, b.classes}));
  Generator gen(11);
  const Tensor x = Tensor::uniform({16, a.in_channels, a.height, a.width}, 0.f, 1.f, gen);
  const Tensor r = Tensor::normal({16, a.classes}, 0.f, 1.f, gen);
  Tensor la, lb;
  {
    NoGradGuard ng;
    la = h5->logits(x);
    lb = onnx->logits(x);
  }
  EXPECT_LT(rel_gap(lb, la), 1e-4);
  EXPECT_EQ(h5->labels(x).to_vector_i32(), onnx->labels(x).to_vector_i32());
  EXPECT_LT(rel_gap(input_grad(*onnx, x, r), input_grad(*h5, x, r)), 1e-4);
}

// The traced plan picks the ONNX graph up: every op of these two is lowered, and the
// fused graph computes the autodiff graph's logits and input gradients.
TEST_P(OnnxArch, FrozenNetworkFusesIt) {
  auto onnx = load_model(kOnnx + std::string(GetParam()) + "-fashion-mnist.onnx");
  const ModelConfig& c = onnx->config();
  const Shape shape{6, c.in_channels, c.height, c.width};
  FrozenNetwork fused(*onnx, shape);
  EXPECT_TRUE(fused.fused()) << fused.why_unfused();
  FrozenNetwork plain(*onnx, shape, FrozenNetwork::Mode::Autodiff);
  Generator gen(5);
  const Tensor x = Tensor::uniform(shape, 0.f, 1.f, gen);
  const Tensor g = Tensor::normal({6, c.classes}, 0.f, 1.f, gen);
  EXPECT_LT(rel_gap(fused.logits(x), plain.logits(x)), 1e-4);
  EXPECT_LT(rel_gap(fused.input_grad(g).clone(), plain.input_grad(g)), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Shipped, OnnxArch, ::testing::Values("lenet5", "resnet20"));

using testing::expect_matches_golden;
using testing::OnnxGolden;
using testing::read_onnx_golden;

TEST(OnnxMobileNet, MatchesPyTorch) {
  auto net = load_model(kOnnx + "mobilenet.onnx");
  EXPECT_EQ(net->config().classes, 10);
  expect_matches_golden(*net, read_onnx_golden());
}

// What the planner does not lower (clamp, concat by selection, ...) runs through
// autodiff, with the same gradients.
TEST(OnnxMobileNet, FrozenNetworkGivesPyTorchsGradients) {
  const OnnxGolden g = read_onnx_golden();
  auto net = load_model(kOnnx + "mobilenet.onnx");
  FrozenNetwork frozen(*net, g.x.shape());
  EXPECT_LT(rel_gap(frozen.logits(g.x), g.logits), 1e-4);
  EXPECT_LT(rel_gap(frozen.input_grad(g.r).clone(), g.grad_x), 1e-4);
}

// `file` ends in `op` (Softmax or LogSoftmax): loaded with one notice naming it, the logits
// of `golden` without it (not probabilities).
void expect_final_op_dropped(const std::string& file, const std::string& golden,
                             const std::string& op) {
  std::vector<std::string> notices;
  const auto old = h5::set_notice_sink([&](const std::string& s) { notices.push_back(s); });
  auto net = load_model(kOnnx + file);
  h5::set_notice_sink(old);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("(" + op + ") computes the output"), std::string::npos) << notices[0];
  const OnnxGolden g = read_onnx_golden(golden);
  NoGradGuard ng;
  EXPECT_LT(rel_gap(net->logits(g.x), g.logits), 1e-4);
}

TEST(OnnxMobileNet, FinalSoftmaxIsDroppedWithANotice) {
  expect_final_op_dropped("mobilenet-softmax.onnx", "mobilenet", "Softmax");
}

// The activations besides ReLU (LeakyReLU, PReLU per channel, ELU, GELU as Erf, SELU,
// Tanh; tests/golden/make_onnx_activations.py) match PyTorch: logits, labels and input
// gradients, directly and through the frozen network; a final LogSoftmax is dropped.
TEST(OnnxActivations, MatchPyTorch) {
  std::ifstream file(kOnnx + "activations.onnx", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (const char* op : {"LeakyRelu", "PRelu", "Elu", "Erf", "Selu", "Tanh"})
    EXPECT_NE(bytes.find(op), std::string::npos) << "the export has no " << op << " node";
  const OnnxGolden g = read_onnx_golden("activations");
  auto net = load_model(kOnnx + "activations.onnx");
  expect_matches_golden(*net, g);
  FrozenNetwork frozen(*net, g.x.shape());
  EXPECT_LT(rel_gap(frozen.logits(g.x), g.logits), 1e-4);
  EXPECT_LT(rel_gap(frozen.input_grad(g.r).clone(), g.grad_x), 1e-4);
}

TEST(OnnxActivations, FinalLogSoftmaxIsDroppedWithANotice) {
  expect_final_op_dropped("activations-logsoftmax.onnx", "activations", "LogSoftmax");
}

// Ceil-mode pooling (tests/golden/make_onnx_pools.py), as SqueezeNet and GoogLeNet use it:
// every pool's output is one larger than the floor mode's, and the values, labels and
// input gradients are PyTorch's; both networks are planned whole (the frozen network's
// fused path), the average pools with the Pad PyTorch writes before one taken as its own
// padding, the other not counting its padding.
TEST(OnnxPools, CeilModeMatchesPyTorch) {
  for (const char* name : {"pools-max", "pools-avg"}) {
    SCOPED_TRACE(name);
    const std::string path = kOnnx + name + ".onnx";
    std::ifstream file(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_NE(bytes.find("ceil_mode"), std::string::npos) << "the export has no ceil_mode";
    const OnnxGolden g = read_onnx_golden(name);
    auto net = load_model(path);
    expect_matches_golden(*net, g);
    FrozenNetwork frozen(*net, g.x.shape());
    EXPECT_LT(rel_gap(frozen.logits(g.x), g.logits), 1e-4);
    EXPECT_LT(rel_gap(frozen.input_grad(g.r).clone(), g.grad_x), 1e-4);
    EXPECT_TRUE(frozen.fused()) << frozen.why_unfused();
    // Both pools are planned in ceil mode.
    const std::string plan = frozen.plan_text();
    size_t ceils = 0;
    for (size_t at = plan.find(" ceil"); at != std::string::npos; at = plan.find(" ceil", at + 1))
      ++ceils;
    EXPECT_EQ(ceils, 2u) << plan;
    if (std::string(name) == "pools-avg") {
      EXPECT_NE(plan.find("avg_pool(v2) ceil [2, 8, 8, 8]  <- zero_pad2d+avg_pool2d"), std::string::npos) << plan;
      EXPECT_NE(plan.find("avg_pool(v4) ceil exclude_pad"), std::string::npos) << plan;
    }
  }
}

// Values computed from the input moved by Slice (a channel split, a mirror image by step
// -1, single columns), Transpose (ShuffleNet's channel shuffle, rank 5) and Concat along
// the columns (tests/golden/make_onnx_shuffle.py): PyTorch's logits, labels and input
// gradients; the frozen network runs them through autodiff and says why.
TEST(OnnxShuffle, RuntimeSliceTransposeAndConcatMatchPyTorch) {
  std::ifstream file(kOnnx + "shuffle.onnx", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (const char* op : {"Slice", "Transpose", "Concat"})
    EXPECT_NE(bytes.find(op), std::string::npos) << "the export has no " << op << " node";
  const OnnxGolden g = read_onnx_golden("shuffle");
  auto net = load_model(kOnnx + "shuffle.onnx");
  expect_matches_golden(*net, g);
  FrozenNetwork frozen(*net, g.x.shape());
  EXPECT_FALSE(frozen.fused());
  EXPECT_FALSE(frozen.why_unfused().empty());
  EXPECT_LT(rel_gap(frozen.logits(g.x), g.logits), 1e-4);
  EXPECT_LT(rel_gap(frozen.input_grad(g.r).clone(), g.grad_x), 1e-4);
}

// ConvNeXt's blocks (tests/golden/make_onnx_convnext.py): LayerNorm over the channels of
// [n, h, w, c], written out at opset 13 (ReduceMean over the last axis, Pow, Sqrt, ...) and
// as LayerNormalization at opset 17, linear layers applied per pixel (MatMul of a rank-4
// value), then InstanceNorm2d and GroupNorm (InstanceNormalization over [n, groups, rest]):
// PyTorch's logits, labels and input gradients from both files.
TEST(OnnxConvNeXt, BothExportsMatchPyTorch) {
  const OnnxGolden g = read_onnx_golden("convnext");
  for (const char* file : {"convnext.onnx", "convnext-opset17.onnx"}) {
    SCOPED_TRACE(file);
    std::ifstream in(kOnnx + file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const bool opset17 = std::string(file) == "convnext-opset17.onnx";
    EXPECT_EQ(bytes.find("LayerNormalization") != std::string::npos, opset17);
    EXPECT_EQ(bytes.find("Sqrt") != std::string::npos, !opset17);
    EXPECT_NE(bytes.find("InstanceNormalization"), std::string::npos);  // GroupNorm, InstanceNorm2d
    auto net = load_model(kOnnx + file);
    expect_matches_golden(*net, g);
    FrozenNetwork frozen(*net, g.x.shape());
    EXPECT_LT(rel_gap(frozen.logits(g.x), g.logits), 1e-4);
    EXPECT_LT(rel_gap(frozen.input_grad(g.r).clone(), g.grad_x), 1e-4);
  }
}

TEST(OnnxMobileNet, SidecarSetsTheNormalization) {
  const auto dir = std::filesystem::temp_directory_path() / "ipg_onnx_sidecar";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.onnx").string();
  std::filesystem::copy_file(kOnnx + "mobilenet.onnx", path,
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(path + ".json") << R"({"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.25, 2]})";
  auto with = load_model(path);
  EXPECT_EQ(with->config().mean, std::vector<float>({0.1f, 0.2f, 0.3f}));
  EXPECT_EQ(with->config().std, std::vector<float>({0.5f, 0.25f, 2.f}));
  auto plain = load_model(kOnnx + "mobilenet.onnx");
  const OnnxGolden g = read_onnx_golden();
  const Tensor mean = Tensor::from_vector({0.1f, 0.2f, 0.3f}, {1, 3, 1, 1});
  const Tensor inv = Tensor::from_vector({2.f, 4.f, 0.5f}, {1, 3, 1, 1});
  NoGradGuard ng;
  EXPECT_LT(rel_gap(with->logits(g.x), plain->logits(ops::mul(ops::sub(g.x, mean), inv))), 1e-5);
  std::ofstream(path + ".json") << R"({"mean": [0.1]})";
  EXPECT_THROW(load_model(path), FileError);
  std::filesystem::remove_all(dir);
}

TEST(OnnxFiles, DetectedByContent) {
  EXPECT_TRUE(is_onnx_file(kOnnx + "mobilenet.onnx"));
  EXPECT_FALSE(is_onnx_file(kOnnx + "mobilenet.golden.h5"));
  EXPECT_FALSE(is_onnx_file(kWeights + "lenet5-fashion-mnist.h5"));
  const auto renamed = std::filesystem::temp_directory_path() / "ipg_onnx_renamed.model";
  std::filesystem::copy_file(kOnnx + "mobilenet.onnx", renamed,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(is_onnx_file(renamed.string()));
  // Suspects load through load_classifier, info through read_model_info.
  auto c = load_classifier(renamed.string());
  EXPECT_EQ(c->num_classes(), 10);
  const ModelInfo info = read_model_info(renamed.string());
  EXPECT_EQ(info.config.arch, kOnnxArch);
  EXPECT_GT(info.num_parameters, 1000);
  std::filesystem::remove(renamed);
}

TEST(OnnxFiles, NotSavedAsNativeOrPostProcessed) {
  auto net = load_model(kOnnx + "mobilenet.onnx");
  const auto out = std::filesystem::temp_directory_path() / "ipg_onnx_saved.h5";
  EXPECT_THROW(save_model(*net, out.string()), std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_THROW(net->last_layer_parameters(), std::invalid_argument);
}

}  // namespace
}  // namespace ipg
