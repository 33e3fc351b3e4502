// FrozenGraphCuda against FrozenGraph on one hand-written plan that holds every step
// kind and the plumbing cases the architectures may not: the input read by two steps
// (its gradient is a sum), a convolution without a ReLU (cuDNN's identity epilogue) as
// the residual of another, an affine step with a ReLU, overlapping padded max pooling, a
// flatten (an alias on CUDA) into linear layers with and without bias and ReLU. Also: the
// same bits twice, no allocation after the first iteration, and the errors of misuse.
// Skipped, visibly, where no GPU is present.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/frozen_graph.h"
#include "engine/plan.h"
#include "engine/random.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"
#if IPG_HAS_CUDA
#include "engine/frozen_graph_cuda.h"
#endif

namespace ipg {
namespace {

#if IPG_HAS_CUDA
using testing::random_values;

PlanStep conv_step(int x, int64_t c_in, int64_t c_out, int k, int padding, bool relu,
                   const Shape& out, uint64_t seed) {
  PlanStep s;
  s.kind = PlanStep::Kind::Conv;
  s.x = x;
  s.weight_shape = {c_out, c_in, k, k};
  s.weight = random_values(c_out * c_in * k * k, seed, -0.4f, 0.4f);
  s.bias = random_values(c_out, seed + 1, -0.2f, 0.2f);
  s.padding = padding;
  s.relu = relu;
  s.out = out;
  s.from = "conv2d";
  return s;
}

// [3, 2, 9, 9] images:
//   v1 = affine(v0)                      input normalization
//   v2 = relu(conv3x3(v1))
//   v3 = conv1x1(v0)                     no ReLU; the input's second reader
//   v4 = relu(conv3x3(v2) + v3)
//   v5 = relu(affine(v4))
//   v6 = maxpool 3/2 pad 1 (v5)          [3, 4, 5, 5]
//   v7 = flatten(v6)                     [3, 100]
//   v8 = relu(linear(v7))                [3, 12]
//   v9 = linear(v8), no bias             [3, 5]: the logits
Plan every_step_plan() {
  Plan p;
  p.input = {3, 2, 9, 9};
  const Shape map4{3, 4, 9, 9};
  PlanStep norm;
  norm.kind = PlanStep::Kind::Affine;
  norm.scale = {1 / 0.3f, 1 / 0.4f};
  norm.shift = {-0.5f / 0.3f, -0.4f / 0.4f};
  norm.out = p.input;
  norm.from = "sub+div";
  p.steps.push_back(norm);
  p.steps.push_back(conv_step(1, 2, 4, 3, 1, true, map4, 10));
  p.steps.push_back(conv_step(0, 2, 4, 1, 0, false, map4, 20));
  PlanStep res = conv_step(2, 4, 4, 3, 1, true, map4, 30);
  res.residual = 3;
  p.steps.push_back(res);
  PlanStep bn;
  bn.kind = PlanStep::Kind::Affine;
  bn.x = 4;
  bn.scale = random_values(4, 40, 0.5f, 1.5f);
  bn.shift = random_values(4, 41, -0.3f, 0.3f);
  bn.relu = true;
  bn.out = map4;
  bn.from = "batch_norm+relu";
  p.steps.push_back(bn);
  PlanStep pool;
  pool.kind = PlanStep::Kind::MaxPool;
  pool.x = 5;
  pool.kernel = 3;
  pool.stride = 2;
  pool.padding = 1;
  pool.out = {3, 4, 5, 5};
  pool.from = "max_pool2d";
  p.steps.push_back(pool);
  PlanStep flat;
  flat.kind = PlanStep::Kind::Flatten;
  flat.x = 6;
  flat.out = {3, 100};
  flat.from = "reshape";
  p.steps.push_back(flat);
  PlanStep fc1;
  fc1.kind = PlanStep::Kind::Linear;
  fc1.x = 7;
  fc1.weight_shape = {12, 100};
  fc1.weight = random_values(1200, 50, -0.2f, 0.2f);
  fc1.bias = random_values(12, 51, -0.1f, 0.1f);
  fc1.relu = true;
  fc1.out = {3, 12};
  fc1.from = "linear+relu";
  p.steps.push_back(fc1);
  PlanStep fc2 = fc1;
  fc2.x = 8;
  fc2.weight_shape = {5, 12};
  fc2.weight = random_values(60, 60, -0.5f, 0.5f);
  fc2.bias.clear();
  fc2.relu = false;
  fc2.out = {3, 5};
  fc2.from = "linear";
  p.steps.push_back(fc2);
  p.logits = 9;
  return p;
}
#endif

TEST(FrozenGraphCuda, EveryStepKindMatchesTheCpuLowering) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const Plan plan = every_step_plan();
  FrozenGraph cpu(plan);
  FrozenGraphCuda gpu(plan, Device::cuda());
  Generator gen(7);
  const Tensor x = Tensor::uniform(plan.input, 0.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({3, 5}, -1.f, 1.f, gen);
  const Tensor ref_logits = cpu.forward(x).clone(), ref_grad = cpu.backward(dz).clone();
  const Tensor gx = x.to(Device::cuda()), gdz = dz.to(Device::cuda());
  std::vector<float> first_logits, first_grad;
  for (int pass = 0; pass < 2; ++pass) {
    const Tensor logits = gpu.forward(gx).cpu(), grad = gpu.backward(gdz).cpu();
    ASSERT_EQ(logits.shape(), (Shape{3, 5}));
    ASSERT_EQ(grad.shape(), plan.input);
    EXPECT_PARITY(ref_logits, logits, 1e-4, 1e-3);
    EXPECT_PARITY(ref_grad, grad, 1e-5, 2e-3);
    if (pass == 0) {
      first_logits = logits.to_vector(), first_grad = grad.to_vector();
    } else {
      EXPECT_EQ(logits.to_vector(), first_logits);
      EXPECT_EQ(grad.to_vector(), first_grad);
    }
  }
  // The gradient is not trivially zero: the comparison above has something to compare.
  double norm = 0;
  for (float v : ref_grad.to_vector()) norm += double(v) * v;
  EXPECT_GT(norm, 1e-12);

  CachingAllocator& alloc = CachingAllocator::for_device(Device::cuda());
  const uint64_t before = alloc.stats().requests;
  for (int i = 0; i < 2; ++i) {
    gpu.forward(gx);
    gpu.backward(gdz);
  }
  EXPECT_EQ(alloc.stats().requests, before);
  const FrozenGraphCuda::Memory m = gpu.memory();
  EXPECT_GT(m.values, 0u);
  EXPECT_GT(m.gradients, 0u);
#endif
}

TEST(FrozenGraphCuda, MisuseIsRefused) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const Plan plan = every_step_plan();
  FrozenGraphCuda gpu(plan, Device::cuda());
  Generator gen(8);
  const Tensor x = Tensor::uniform(plan.input, 0.f, 1.f, gen);
  const Tensor dz = Tensor::zeros({3, 5}, Device::cuda());
  EXPECT_THROW(gpu.backward(dz), std::logic_error);     // before any forward
  EXPECT_THROW(gpu.forward(x), std::invalid_argument);  // a host tensor
  EXPECT_THROW(gpu.forward(Tensor::zeros({2, 2, 9, 9}, Device::cuda())), std::invalid_argument);
  gpu.forward(x.to(Device::cuda()));
  EXPECT_THROW(gpu.backward(Tensor::zeros({3, 4}, Device::cuda())), std::invalid_argument);
  gpu.forget_forward();
  EXPECT_THROW(gpu.backward(dz), std::logic_error);
  EXPECT_THROW(FrozenGraphCuda(plan, Device::cpu()), std::invalid_argument);
#endif
}

}  // namespace
}  // namespace ipg
