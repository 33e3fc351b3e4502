// The first ops (add, sub, mul, div, affine, unary, matmul, bmm, linear, sum, mean, reshape):
// values against plain loops, gradients against finite differences, and CUDA parity.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/ops/strided.h"
#include "engine/ops/view.h"
#include "engine/random.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using testing::check_gradients;
using Inputs = std::vector<Tensor>;

TEST(OpsValues, BroadcastAddMatchesLoop) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({10, 20, 30}, {3});
  Tensor c = Tensor::from_vector({100, 200}, {2, 1});
  EXPECT_EQ(ops::add(a, b).to_vector(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(ops::add(a, c).to_vector(), (std::vector<float>{101, 102, 103, 204, 205, 206}));
  EXPECT_EQ(ops::add(b, c).shape(), (Shape{2, 3}));
}

TEST(OpsValues, ShapeErrorNamesBothShapes) {
  try {
    ops::mul(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3] and [4, 3]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), ShapeError);
  EXPECT_THROW(ops::linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), ShapeError);
  EXPECT_THROW(ops::sum(Tensor::zeros({2, 3}), 2), ShapeError);
}

TEST(OpsValues, MatmulMatchesLoop) {
  Generator g(11);
  Tensor a = Tensor::uniform({5, 7}, -1, 1, g), b = Tensor::uniform({7, 3}, -1, 1, g);
  const auto av = a.to_vector(), bv = b.to_vector();
  std::vector<float> ref(15, 0.f);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 7; ++k) ref[i * 3 + j] += av[i * 7 + k] * bv[k * 3 + j];
  const auto r = testing::compare_values(ref, ops::matmul(a, b).to_vector(), 1e-5, 1e-5);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(OpsValues, BatchedMatmulIsOneMatmulPerMatrix) {
  // [2, 3, m, k] x [2, 3, k, n]: each of the six products as ops::matmul computes it alone.
  Generator g(12);
  const Tensor a = Tensor::uniform({2, 3, 4, 5}, -1, 1, g), b = Tensor::uniform({2, 3, 5, 6}, -1, 1, g);
  const Tensor c = ops::bmm(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 3, 4, 6}));
  const auto cv = c.to_vector(), av = a.to_vector(), bv = b.to_vector();
  for (int i = 0; i < 6; ++i) {
    const Tensor ai = Tensor::from_vector(std::vector<float>(av.begin() + i * 20, av.begin() + (i + 1) * 20), {4, 5});
    const Tensor bi = Tensor::from_vector(std::vector<float>(bv.begin() + i * 30, bv.begin() + (i + 1) * 30), {5, 6});
    EXPECT_EQ(ops::matmul(ai, bi).to_vector(), std::vector<float>(cv.begin() + i * 24, cv.begin() + (i + 1) * 24)) << i;
  }
  // Leading dimensions must be equal (no broadcast), and the inner sizes must agree.
  EXPECT_THROW(ops::bmm(Tensor::zeros({2, 4, 5}), Tensor::zeros({3, 5, 6})), ShapeError);
  EXPECT_THROW(ops::bmm(Tensor::zeros({2, 4, 5}), Tensor::zeros({2, 4, 6})), ShapeError);
  EXPECT_THROW(ops::bmm(Tensor::zeros({2, 4, 5}), Tensor::zeros({5, 6})), ShapeError);
  // An empty inner dimension gives zeros, not uninitialized memory.
  EXPECT_EQ(ops::bmm(Tensor::full({2, 3, 0}, 1.f), Tensor::full({2, 0, 4}, 1.f)).to_vector(),
            std::vector<float>(24, 0.f));
}

TEST(OpsValues, SumAndMeanOverDims) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(ops::sum(x).item(), 21.f);
  EXPECT_EQ(ops::mean(x).item(), 3.5f);
  EXPECT_EQ(ops::sum(x, 0).to_vector(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(ops::sum(x, 1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(ops::mean(x, -1).to_vector(), (std::vector<float>{2, 5}));
}

TEST(OpsValues, LongSumIsAccurate) {
  // 2^20 copies of 0.1f: a float running sum drifts by several units; the reference
  // must be within one float ulp of the true sum (0.1f * 2^20 = 104857.6015625).
  Tensor x = Tensor::full({1 << 20}, 0.1f);
  EXPECT_NEAR(ops::sum(x).item(), 104857.6015625, 0.008);
}

TEST(OpsValues, ArgmaxRowsTiesAndNan) {
  Tensor s = Tensor::from_vector({1, 3, 3, 0, NAN, 2, 5, 1, -1}, {3, 3});
  EXPECT_EQ(ops::argmax(s).to_vector_i32(), (std::vector<int32_t>{1, 2, 0}));
}

TEST(OpsGrad, BinaryOpsWithBroadcast) {
  auto a = testing::random_leaf({2, 3, 4}, 1), b = testing::random_leaf({3, 1}, 2);
  Tensor bpos = testing::random_leaf({1, 4}, 3, 0.5f, 2.f);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::add(in[0], in[1]); }, {a, b});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::sub(in[0], in[1]); }, {a, b});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::mul(in[0], in[1]); }, {a, b});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::div(in[0], in[1]); }, {a, bpos});
}

TEST(OpsGrad, UnaryOps) {
  auto x = testing::random_leaf({3, 5}, 4);
  auto pos = testing::random_leaf({3, 5}, 5, 0.2f, 2.f);
  auto open = testing::random_leaf({3, 5}, 6, -0.8f, 0.8f);
  for (auto f : {ops::relu, ops::neg, ops::tanh, ops::square, ops::exp, ops::abs})
    EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0]); }, {x});
  for (auto f : {ops::log, ops::sqrt})
    EXPECT_GRADCHECK([f](const Inputs& in) { return f(in[0]); }, {pos});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::atanh(in[0]); }, {open});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::affine(in[0], -2.5f, 1.f); }, {x});
}

TEST(OpsGrad, SignHasZeroGradient) {
  auto x = testing::random_leaf({6}, 7);
  ops::sum(ops::sign(x)).backward();
  for (float g : x.grad().to_vector()) EXPECT_EQ(g, 0.f);
}

TEST(OpsGrad, MatmulAndLinear) {
  auto a = testing::random_leaf({4, 6}, 8), b = testing::random_leaf({6, 3}, 9);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::matmul(in[0], in[1]); }, {a, b});
  auto x = testing::random_leaf({5, 6}, 10), w = testing::random_leaf({3, 6}, 11),
       bias = testing::random_leaf({3}, 12);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::linear(in[0], in[1], in[2]); }, {x, w, bias});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::linear(in[0], in[1]); }, {x, w});
  // Batched, and one operand used twice (attention's Q K^T of one tensor): both gradients
  // add into the same place.
  auto q = testing::random_leaf({3, 4, 5}, 14), k = testing::random_leaf({3, 5, 2}, 15);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::bmm(in[0], in[1]); }, {q, k});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::bmm(in[0], ops::permute(in[0], {0, 2, 1})); }, {q});
}

TEST(OpsGrad, Reductions) {
  auto x = testing::random_leaf({3, 4, 5}, 13);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::sum(in[0]); }, {x});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::mean(in[0]); }, {x});
  for (int d : {0, 1, 2, -1}) {
    EXPECT_GRADCHECK([d](const Inputs& in) { return ops::sum(in[0], d); }, {x});
    EXPECT_GRADCHECK([d](const Inputs& in) { return ops::mean(in[0], d, true); }, {x});
  }
}

TEST(OpsGrad, ReshapeAndFlatten) {
  auto x = testing::random_leaf({2, 3, 4}, 14);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::square(ops::reshape(in[0], {4, 6})); }, {x});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::flatten(in[0]); }, {x});
}

TEST(OpsGrad, CheckerCatchesAWrongGradient) {
  // x * detach(x) has derivative 2x but autodiff sees only x: the checker must object.
  auto y = testing::random_leaf({8}, 16, 0.1f, 1.f);
  const auto bad =
      check_gradients([](const Inputs& in) { return ops::mul(in[0], in[0].detach()); }, {y});
  EXPECT_FALSE(bad.ok) << "the checker missed half of the product rule";
}

// ---- CUDA parity: same op, same inputs, CPU twin as reference ----

using testing::expect_forward_backward_parity;

TEST(OpsCuda, ElementwiseParity) {
  IPG_REQUIRE_CUDA();
  auto a = testing::random_leaf({4, 3, 33}, 21), b = testing::random_leaf({3, 1}, 22);
  auto pos = testing::random_leaf({4, 3, 33}, 23, 0.2f, 2.f);
  for (auto f : {ops::add, ops::sub, ops::mul, ops::div})
    expect_forward_backward_parity([f](const Inputs& in) { return f(in[0], in[1]); }, {pos, b},
                                   1e-5, 1e-5);
  for (auto f : {ops::relu, ops::neg, ops::sign, ops::tanh, ops::square, ops::exp, ops::abs})
    expect_forward_backward_parity([f](const Inputs& in) { return f(in[0]); }, {a}, 1e-5, 1e-5);
  for (auto f : {ops::log, ops::sqrt, ops::atanh})
    expect_forward_backward_parity(
        [f](const Inputs& in) { return f(ops::mul_scalar(in[0], 0.4f)); }, {pos}, 1e-5, 1e-5);
}

TEST(OpsCuda, LinalgAndReductionParity) {
  IPG_REQUIRE_CUDA();
  auto x = testing::random_leaf({100, 300}, 31), w = testing::random_leaf({10, 300}, 32),
       bias = testing::random_leaf({10}, 33);
  expect_forward_backward_parity([](const Inputs& in) { return ops::linear(in[0], in[1], in[2]); },
                                 {x, w, bias}, 1e-4, 1e-4);
  auto a = testing::random_leaf({64, 48}, 34), b = testing::random_leaf({48, 32}, 35);
  expect_forward_backward_parity([](const Inputs& in) { return ops::matmul(in[0], in[1]); }, {a, b},
                                 1e-4, 1e-4);
  auto q = testing::random_leaf({40, 17, 24}, 37), k = testing::random_leaf({40, 24, 17}, 38);
  expect_forward_backward_parity([](const Inputs& in) { return ops::bmm(in[0], in[1]); }, {q, k},
                                 1e-4, 1e-4);
  auto big = testing::random_leaf({3, 70000}, 36);
  expect_forward_backward_parity([](const Inputs& in) { return ops::sum(in[0], 1); }, {big}, 1e-2,
                                 1e-5);
  expect_forward_backward_parity([](const Inputs& in) { return ops::mean(in[0]); }, {big}, 1e-5,
                                 1e-4);
  expect_forward_backward_parity([](const Inputs& in) { return ops::sum(in[0], 0, true); }, {big},
                                 1e-5, 1e-5);
  // A full sum of 2^24 floats takes the split (two-pass) path: accurate, and the same bits
  // on every run.
  Tensor ones = Tensor::full({1 << 24}, 0.1f, Device::cuda(0));
  const float s1 = ops::sum(ones).item(), s2 = ops::sum(ones).item();
  EXPECT_NEAR(s1, 0.1 * (1 << 24), 2.0);  // ~1e-6 relative: a tree, not a running sum
  EXPECT_EQ(s1, s2);
}

TEST(OpsCuda, ArgmaxParity) {
  IPG_REQUIRE_CUDA();
  Generator g(41);
  Tensor s = Tensor::uniform({1000, 10}, -1, 1, g);
  EXPECT_PARITY(ops::argmax(s), ops::argmax(s.to(Device::cuda(0))), 0, 0);
}

}  // namespace
}  // namespace ipg
