// The fused frozen graph against the autodiff graph it replaces in the fingerprint loop:
// for every architecture, the same weights (batch-norm statistics randomized, so folding
// them into the convolutions is exercised) and batch give the same logits and the same
// input gradient for the same gradient at the logits, up to rounding.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "tests/support/arch_cases.h"
#include "tests/support/mobile_blocks.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using testing::ArchCase;
using testing::build_arch;

class FrozenNetworkArch : public ::testing::TestWithParam<ArchCase> {};

TEST_P(FrozenNetworkArch, FusedGraphMatchesAutodiff) {
  const ArchCase c = GetParam();
  auto net = build_arch(c);
  const Shape in{3, c.channels, c.side, c.side};
  FrozenNetwork fused(*net, in);
  FrozenNetwork reference(*net, in, FrozenNetwork::Mode::Autodiff);
  ASSERT_TRUE(fused.fused()) << c.arch << " not fused: " << fused.why_unfused();
  ASSERT_FALSE(reference.fused());

  Generator gen(21);
  const Tensor x = Tensor::uniform(in, 0.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({3, 10}, -1.f, 1.f, gen);
  const Tensor ref_logits = reference.logits(x);
  const Tensor ref_grad = reference.input_grad(dz);
  // Twice: the second pass reuses every buffer and must give the same result.
  for (int pass = 0; pass < 2; ++pass) {
    const Tensor logits = fused.logits(x).clone();
    const Tensor grad = fused.input_grad(dz).clone();
    ASSERT_EQ(logits.shape(), (Shape{3, 10}));
    ASSERT_EQ(grad.shape(), in);
    EXPECT_PARITY(ref_logits, logits, 1e-4, 1e-3);
    EXPECT_PARITY(ref_grad, grad, 1e-5, 2e-3);
  }
  // The gradient is not trivially zero: the comparison above has something to compare.
  double norm = 0;
  for (float v : ref_grad.to_vector()) norm += double(v) * v;
  EXPECT_GT(norm, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Architectures, FrozenNetworkArch,
                         ::testing::Values(ArchCase{"lenet5", 1, 28}, ArchCase{"resnet20", 1, 28},
                                           ArchCase{"resnet20", 3, 32}, ArchCase{"wrn-22-4", 1, 16},
                                           ArchCase{"vgg16", 1, 28}, ArchCase{"vgg16-imagenet", 3, 32},
                                           ArchCase{"resnet50", 3, 32}),
                         [](const auto& info) { return testing::arch_case_name(info.param); });

// On CUDA FrozenNetwork runs the CUDA lowering of the same plan (every architecture in
// test_frozen_network_cuda.cpp); it must agree with the CPU's fused graph (the whole chain
// the fingerprint loop relies on, across both backends).
TEST(FrozenNetworkCuda, MatchesTheCpuFusedGraph) {
  IPG_REQUIRE_CUDA();
  for (const ArchCase& c : {ArchCase{"resnet20", 1, 28}, ArchCase{"vgg16", 1, 28}}) {
    SCOPED_TRACE(c.arch);
    auto cpu = build_arch(c), gpu = build_arch(c);
    gpu->to(Device::cuda());
    const Shape in{4, c.channels, c.side, c.side};
    FrozenNetwork on_cpu(*cpu, in), on_gpu(*gpu, in);
    ASSERT_TRUE(on_cpu.fused());
    Generator gen(31);
    const Tensor x = Tensor::uniform(in, 0.f, 1.f, gen);
    const Tensor dz = Tensor::uniform({4, 10}, -1.f, 1.f, gen);
    const Tensor ref_logits = on_cpu.logits(x).clone(), ref_grad = on_cpu.input_grad(dz).clone();
    EXPECT_PARITY(ref_logits, on_gpu.logits(x.to(Device::cuda())), 1e-4, 1e-3);
    EXPECT_PARITY(ref_grad, on_gpu.input_grad(dz.to(Device::cuda())), 1e-5, 2e-3);
  }
}

// The mobile families' blocks (tests/support/mobile_blocks.h) plan fully: ReLU6 as the
// stem conv's capped epilogue, hard swish, SiLU, GELU and both hard sigmoids as activation
// steps, the squeeze-and-excitation convolutions as linear layers of [n, C] values and
// their products as channel scales; and the fused graph gives autodiff's logits and input
// gradient.
TEST(FrozenNetwork, MobileBlocksFuseAndMatchAutodiff) {
  testing::MobileBlocks net;
  const Shape in{3, 3, 16, 16};
  FrozenNetwork fused(net, in);
  FrozenNetwork reference(net, in, FrozenNetwork::Mode::Autodiff);
  ASSERT_TRUE(fused.fused()) << fused.why_unfused();
  const std::string& plan = fused.plan_text();
  for (const char* part : {"relu max 6", "<- conv2d+batch_norm+clamp", "<- hard_swish",
                           "<- sigmoid+mul", "<- gelu", "<- hard_sigmoid", "<- affine+clamp",
                           "channel_scale(", "linear(", "groups 16"})
    EXPECT_NE(plan.find(part), std::string::npos) << part << " not in\n" << plan;

  Generator gen(23);
  const Tensor x = Tensor::uniform(in, 0.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({3, 10}, -1.f, 1.f, gen);
  // The cap matters: some of the stem's outputs lie above 6 (and some below 0).
  {
    NoGradGuard no_grad;
    const Shape per_channel{1, 3, 1, 1};
    const Tensor normalized =
        ops::div(ops::sub(x, Tensor::from_vector(net.config().mean, per_channel)),
                 Tensor::from_vector(net.config().std, per_channel));
    int above = 0, below = 0;
    for (float v : net.stem(normalized).to_vector()) above += v > 6.f, below += v < 0.f;
    EXPECT_GT(above, 20);
    EXPECT_GT(below, 20);
  }
  const Tensor ref_logits = reference.logits(x);
  const Tensor ref_grad = reference.input_grad(dz);
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_PARITY(ref_logits, fused.logits(x).clone(), 1e-4, 1e-3);
    EXPECT_PARITY(ref_grad, fused.input_grad(dz).clone(), 1e-5, 2e-3);
  }
  double norm = 0;
  for (float v : ref_grad.to_vector()) norm += double(v) * v;
  EXPECT_GT(norm, 1e-12);
}

TEST(FrozenNetwork, RefusesOtherShapes) {
  auto net = build_arch(ArchCase{"lenet5", 1, 28});
  FrozenNetwork f(*net, {2, 1, 28, 28});
  Generator gen(1);
  EXPECT_THROW(f.logits(Tensor::uniform({3, 1, 28, 28}, 0.f, 1.f, gen)), ShapeError);
  EXPECT_THROW(FrozenNetwork(*net, {2, 3, 28, 28}), ShapeError);
}

TEST(FrozenNetwork, BackwardBeforeForwardIsAnError) {
  auto net = build_arch(ArchCase{"resnet20", 1, 28});
  FrozenNetwork f(*net, {2, 1, 28, 28});
  EXPECT_THROW(f.input_grad(Tensor::zeros({2, 10})), std::logic_error);
}

}  // namespace
}  // namespace ipg
