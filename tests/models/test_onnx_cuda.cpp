// ONNX models on CUDA: the MobileNetV2-style, activations, ceil-mode pooling, shuffle,
// ConvNeXt, ViT and Swin exports against PyTorch's goldens, and the frozen networks of the
// ResNet20 and max-pooling exports (the CUDA lowering of their plans) against the CPU,
// logits and input gradients. Skipped visibly without a GPU.
#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "models/model_file.h"
#include "tests/support/network_checks.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using testing::kOnnx;

// The export `file` (default `name`) on CUDA against the PyTorch golden `name`: logits and
// input gradients.
void expect_golden_on_cuda(const std::string& name, std::string file = "") {
  if (file.empty()) file = name;
  SCOPED_TRACE(file);
  const h5::File f(kOnnx + name + ".golden.h5");
  const Tensor x = f.dataset("x").read(DType::F32, {4, 3, 16, 16});
  const Tensor r = f.dataset("r").read(DType::F32, {4, 10});
  auto net = load_model(kOnnx + file + ".onnx");
  net->to(Device::cuda());
  Tensor xi = x.to(Device::cuda());
  xi.set_requires_grad(true);
  const Tensor logits = net->logits(xi);
  ops::sum(ops::mul(logits, r.to(Device::cuda()))).backward();
  EXPECT_PARITY(f.dataset("logits").read(DType::F32, {4, 10}), logits.detach().cpu(), 1e-4, 1e-4);
  EXPECT_PARITY(f.dataset("grad_x").read(DType::F32, {4, 3, 16, 16}), xi.grad().cpu(), 1e-4, 1e-3);
}

TEST(OnnxCuda, MobileNetMatchesPyTorch) {
  IPG_REQUIRE_CUDA();
  expect_golden_on_cuda("mobilenet");
}

// LeakyReLU, PReLU, ELU, GELU (Erf: erff_hd, as on the CPU), SELU and Tanh on the GPU.
TEST(OnnxCuda, ActivationsMatchPyTorch) {
  IPG_REQUIRE_CUDA();
  expect_golden_on_cuda("activations");
}

// Ceil-mode max and average pooling (SqueezeNet, GoogLeNet) through autodiff on the GPU,
// and both networks' frozen plans (max pools; average pools with an absorbed Pad and one
// not counting its padding), lowered to CUDA, against the CPU's.
TEST(OnnxCuda, CeilModePoolsMatchPyTorch) {
  IPG_REQUIRE_CUDA();
  expect_golden_on_cuda("pools-max");
  expect_golden_on_cuda("pools-avg");
  for (const char* name : {"pools-max.onnx", "pools-avg.onnx"}) {
    SCOPED_TRACE(name);
    const std::string path = kOnnx + name;
    auto cpu = load_model(path), gpu = load_model(path);
    gpu->to(Device::cuda());
    const Shape shape{5, 3, 16, 16};
    FrozenNetwork fc(*cpu, shape), fg(*gpu, shape);
    EXPECT_TRUE(fg.fused()) << fg.why_unfused();
    Generator gen(10);
    const Tensor x = Tensor::uniform(shape, 0.f, 1.f, gen);
    const Tensor g = Tensor::normal({5, 10}, 0.f, 1.f, gen);
    EXPECT_PARITY(fc.logits(x), fg.logits(x.to(Device::cuda())).cpu(), 1e-4, 1e-4);
    EXPECT_PARITY(fc.input_grad(g).clone(), fg.input_grad(g.to(Device::cuda())).cpu(), 1e-4, 1e-3);
  }
}

// Slice (a step of -1 included), rank-5 Transpose and Concat along the columns on the GPU.
TEST(OnnxCuda, RuntimeSliceTransposeAndConcatMatchPyTorch) {
  IPG_REQUIRE_CUDA();
  expect_golden_on_cuda("shuffle");
}

// LayerNorm over the channels, written out and as one node, and per-pixel linear layers.
TEST(OnnxCuda, ConvNeXtMatchesPyTorch) {
  IPG_REQUIRE_CUDA();
  expect_golden_on_cuda("convnext");
  expect_golden_on_cuda("convnext", "convnext-opset17");
}

// ViT and Swin, read per batch size: the batched products on cuBLAS, and each batch
// size's graph built on the device the network is on (its batch-size constants, the
// ViT's expanded class token, kept there), also after it ran on the CPU first.
TEST(OnnxCuda, TransformersMatchPyTorch) {
  IPG_REQUIRE_CUDA();
  for (const char* name : {"vit", "swin"}) {
    expect_golden_on_cuda(name);
    SCOPED_TRACE(name);
    const h5::File f(kOnnx + name + ".golden.h5");
    const Tensor x = f.dataset("x").read(DType::F32, {4, 3, 16, 16});
    const Tensor want = f.dataset("logits").read(DType::F32, {4, 10});
    auto net = load_model(kOnnx + name + ".onnx");
    NoGradGuard ng;
    EXPECT_PARITY(want, net->logits(x), 1e-4, 1e-4);
    net->to(Device::cuda());
    EXPECT_PARITY(want, net->logits(x.to(Device::cuda())).cpu(), 1e-4, 1e-4);
    EXPECT_PARITY(want.narrow0(1, 3), net->logits(x.narrow0(1, 3).to(Device::cuda())).cpu(), 1e-4, 1e-4);
  }
}

TEST(OnnxCuda, FrozenResNet20MatchesTheCpu) {
  IPG_REQUIRE_CUDA();
  const std::string path = kOnnx + "resnet20-fashion-mnist.onnx";
  auto cpu = load_model(path), gpu = load_model(path);
  gpu->to(Device::cuda());
  const Shape shape{8, 1, 28, 28};
  FrozenNetwork fc(*cpu, shape), fg(*gpu, shape);
  EXPECT_TRUE(fg.fused()) << fg.why_unfused();
  Generator gen(9);
  const Tensor x = Tensor::uniform(shape, 0.f, 1.f, gen);
  const Tensor g = Tensor::normal({8, 10}, 0.f, 1.f, gen);
  EXPECT_PARITY(fc.logits(x), fg.logits(x.to(Device::cuda())).cpu(), 1e-3, 1e-3);
  EXPECT_PARITY(fc.input_grad(g).clone(), fg.input_grad(g.to(Device::cuda())).cpu(), 1e-3, 1e-2);
}

}  // namespace
}  // namespace ipg
