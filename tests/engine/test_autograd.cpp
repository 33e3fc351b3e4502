// Autodiff graph semantics: accumulation, shared inputs, diamonds, no-grad scope and
// frozen parameters (the boundary-search case: gradient to the input only).
#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"

namespace ipg {
namespace {

Tensor leaf(std::vector<float> v, Shape s) {
  Tensor t = Tensor::from_vector(v, s);
  t.set_requires_grad(true);
  return t;
}

TEST(Autograd, SharedInputAccumulates) {
  // y = sum(x*x + x): dy/dx = 2x + 1, with x reaching the graph three times.
  Tensor x = leaf({1, -2, 3}, {3});
  ops::sum(ops::add(ops::mul(x, x), x)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{3, -3, 7}));
}

TEST(Autograd, DiamondGraph) {
  // b = 2a, c = a^2, d = sum(b*c) = sum(2a^3): dd/da = 6a^2.
  Tensor a = leaf({1, 2}, {2});
  Tensor b = ops::mul_scalar(a, 2.f);
  Tensor c = ops::square(a);
  ops::sum(ops::mul(b, c)).backward();
  EXPECT_EQ(a.grad().to_vector(), (std::vector<float>{6, 24}));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, 2}, {2});
  ops::sum(ops::mul_scalar(x, 3.f)).backward();
  ops::sum(ops::mul_scalar(x, 3.f)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{6, 6}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y;
  {
    NoGradGuard g;
    y = ops::mul(x, x);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(ops::sum(y).backward(), std::logic_error);
  EXPECT_TRUE(autograd::grad_enabled());
}

TEST(Autograd, FrozenParametersGetNoGradient) {
  // The fingerprint loop: weights constant, gradient with respect to the input only.
  Tensor w = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({0.5f, -0.5f}, {2});
  Tensor x = leaf({1, 0, -1}, {1, 3});
  ops::sum(ops::linear(x, w, b)).backward();
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  // d/dx sum(x W^T) = column sums of W.
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{5, 7, 9}));
}

TEST(Autograd, OutputRequiresGradOnlyThroughMarkedInputs) {
  Tensor a = Tensor::from_vector({1}, {1});
  Tensor b = leaf({2}, {1});
  EXPECT_FALSE(ops::add(a, a).requires_grad());
  EXPECT_TRUE(ops::add(a, b).requires_grad());
}

TEST(Autograd, NonScalarRootNeedsGradient) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = ops::mul_scalar(x, 2.f);
  EXPECT_THROW(y.backward(), ShapeError);
  EXPECT_THROW(y.backward(Tensor::ones({3})), ShapeError);
  y.backward(Tensor::from_vector({1, 10}, {2}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2, 20}));
}

TEST(Autograd, OnlyLeavesCanBeMarked) {
  Tensor x = leaf({1}, {1});
  Tensor y = ops::mul(x, x);
  EXPECT_THROW(y.set_requires_grad(false), std::logic_error);
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  Tensor x = leaf({1}, {1});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = ops::add_scalar(y, 0.f);
  y.backward(Tensor::ones({1}));
  EXPECT_EQ(x.grad().item(), 1.f);
}

}  // namespace
}  // namespace ipg
