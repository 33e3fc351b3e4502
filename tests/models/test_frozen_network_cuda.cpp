// FrozenNetwork on CUDA (the CUDA lowering of the plan, engine/frozen_graph_cuda.h)
// against the CPU's fused graph, for every architecture: the same weights and batch give
// the same logits and input gradient up to rounding (the tolerances of the CPU parity
// tests). Also: two runs give the same bits, an iteration after the first allocates
// nothing, and a plan that disagrees with the forward falls back to autodiff, saying why.
// Skipped, visibly, where no GPU is present.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/view.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "tests/support/arch_cases.h"
#include "tests/support/mobile_blocks.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using testing::ArchCase;
using testing::build_arch;

class FrozenNetworkCudaArch : public ::testing::TestWithParam<ArchCase> {};

TEST_P(FrozenNetworkCudaArch, FusedAndAgreesWithTheCpuFusedGraph) {
  IPG_REQUIRE_CUDA();
  const ArchCase c = GetParam();
  auto cpu = build_arch(c), gpu = build_arch(c);
  gpu->to(Device::cuda());
  const Shape in{3, c.channels, c.side, c.side};
  FrozenNetwork on_cpu(*cpu, in), on_gpu(*gpu, in);
  ASSERT_TRUE(on_cpu.fused()) << on_cpu.why_unfused();
  ASSERT_TRUE(on_gpu.fused()) << c.arch << " not fused on CUDA: " << on_gpu.why_unfused();
  EXPECT_EQ(on_gpu.plan_text(), on_cpu.plan_text());

  Generator gen(21);
  const Tensor x = Tensor::uniform(in, 0.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({3, 10}, -1.f, 1.f, gen);
  const Tensor ref_logits = on_cpu.logits(x).clone(), ref_grad = on_cpu.input_grad(dz).clone();
  const Tensor gx = x.to(Device::cuda()), gdz = dz.to(Device::cuda());
  std::vector<float> first_logits, first_grad;
  // Twice: the second pass reuses every buffer and must give the same bits.
  for (int pass = 0; pass < 2; ++pass) {
    const Tensor logits = on_gpu.logits(gx).cpu();
    const Tensor grad = on_gpu.input_grad(gdz).cpu();
    ASSERT_EQ(logits.shape(), (Shape{3, 10}));
    ASSERT_EQ(grad.shape(), in);
    EXPECT_PARITY(ref_logits, logits, 1e-4, 1e-3);
    EXPECT_PARITY(ref_grad, grad, 1e-5, 2e-3);
    if (pass == 0) {
      first_logits = logits.to_vector();
      first_grad = grad.to_vector();
    } else {
      EXPECT_EQ(logits.to_vector(), first_logits) << "logits differ between two runs";
      EXPECT_EQ(grad.to_vector(), first_grad) << "input gradients differ between two runs";
    }
  }
  double norm = 0;
  for (float v : ref_grad.to_vector()) norm += double(v) * v;
  EXPECT_GT(norm, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Architectures, FrozenNetworkCudaArch,
                         ::testing::Values(ArchCase{"lenet5", 1, 28}, ArchCase{"resnet20", 1, 28},
                                           ArchCase{"wrn-22-4", 1, 16}, ArchCase{"vgg16", 1, 28},
                                           ArchCase{"resnet50", 3, 32}),
                         [](const auto& info) { return testing::arch_case_name(info.param); });

// After the first iteration, forward + backward ask no allocator for anything: every
// buffer was made when the graph was built (what a CUDA graph capture needs).
TEST(FrozenNetworkCuda, SteadyStateAllocatesNothing) {
  IPG_REQUIRE_CUDA();
  const Device dev = Device::cuda();
  auto net = build_arch(ArchCase{"resnet20", 1, 28});
  net->to(dev);
  const Shape in{8, 1, 28, 28};
  FrozenNetwork f(*net, in);
  ASSERT_TRUE(f.fused()) << f.why_unfused();
  Generator gen(3);
  const Tensor x = Tensor::uniform(in, 0.f, 1.f, gen, dev);
  const Tensor dz = Tensor::uniform({8, 10}, -1.f, 1.f, gen, dev);
  auto iteration = [&] {
    f.logits(x);
    f.input_grad(dz);
  };
  iteration();
  CachingAllocator& gpu = CachingAllocator::for_device(dev);
  CachingAllocator& host = CachingAllocator::for_device(Device::cpu());
  const uint64_t gpu_before = gpu.stats().requests, host_before = host.stats().requests;
  for (int i = 0; i < 3; ++i) iteration();
  EXPECT_EQ(gpu.stats().requests, gpu_before);
  EXPECT_EQ(host.stats().requests, host_before);
}

// The mobile families' blocks (tests/support/mobile_blocks.h): activation steps, channel
// scales, squeezed linear layers, a depthwise conv, and ReLU6, which the CUDA lowering
// runs as the conv with cuDNN's identity epilogue and then a clamp step; against the CPU's
// fused graph.
TEST(FrozenNetworkCuda, MobileBlocksMatchTheCpuFusedGraph) {
  IPG_REQUIRE_CUDA();
  testing::MobileBlocks cpu, gpu;
  gpu.to(Device::cuda());
  const Shape in{4, 3, 16, 16};
  FrozenNetwork on_cpu(cpu, in), on_gpu(gpu, in);
  ASSERT_TRUE(on_cpu.fused()) << on_cpu.why_unfused();
  ASSERT_TRUE(on_gpu.fused()) << on_gpu.why_unfused();
  Generator gen(37);
  const Tensor x = Tensor::uniform(in, 0.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({4, 10}, -1.f, 1.f, gen);
  const Tensor ref_logits = on_cpu.logits(x).clone(), ref_grad = on_cpu.input_grad(dz).clone();
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_PARITY(ref_logits, on_gpu.logits(x.to(Device::cuda())), 1e-4, 1e-3);
    EXPECT_PARITY(ref_grad, on_gpu.input_grad(dz.to(Device::cuda())), 1e-5, 2e-3);
  }
}

// A forward that reads the input through the host: the trace takes that value for a
// constant, so the plan is wrong on any other input. The check on CUDA drops it.
class HiddenRead : public Network {
 public:
  HiddenRead() : Network(config()), gen_(4) {
    fc_ = &add_module("fc", std::make_shared<nn::Linear>(16, 10, true, gen_));
  }
  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"fc/weight", &fc_->weight}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    const float first = x.detach().cpu().to_vector()[0];
    const Tensor h = ops::sub(x, Tensor::from_vector({first}, {1, 1, 1, 1}, x.device()));
    return fc_->forward(ops::flatten(h));
  }

 private:
  static ModelConfig config() {
    ModelConfig c;
    c.arch = "hidden-read";
    c.height = c.width = 4;
    return c;
  }
  Generator gen_;
  nn::Linear* fc_ = nullptr;
};

TEST(FrozenNetworkCuda, PlanThatDisagreesFallsBackToAutodiff) {
  IPG_REQUIRE_CUDA();
  HiddenRead net;
  net.to(Device::cuda());
  FrozenNetwork f(net, {2, 1, 4, 4});
  EXPECT_FALSE(f.fused());
  EXPECT_NE(f.why_unfused().find("differs"), std::string::npos) << f.why_unfused();
  Generator gen(1);
  const Tensor x = Tensor::uniform({2, 1, 4, 4}, 0.f, 1.f, gen, Device::cuda());
  EXPECT_EQ(f.logits(x).shape(), (Shape{2, 10}));
  EXPECT_EQ(f.input_grad(Tensor::ones({2, 10}, Device::cuda())).shape(), (Shape{2, 1, 4, 4}));
}

}  // namespace
}  // namespace ipg
