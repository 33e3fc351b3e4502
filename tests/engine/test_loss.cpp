// Softmax and cross-entropy: values against plain log-sum-exp loops (in double), stability
// at large logits, gradients against finite differences, label checks, CUDA parity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/random.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;

Tensor rand_labels(int64_t n, int32_t k, uint64_t seed) {
  Generator g(seed);
  const std::vector<float> u = Tensor::uniform({n}, 0.f, static_cast<float>(k), g).to_vector();
  std::vector<int32_t> labels;
  for (float v : u) labels.push_back(std::min(static_cast<int32_t>(v), k - 1));
  return Tensor::from_vector_i32(labels, {n});
}

// Row softmax by the textbook formula, in double.
std::vector<double> softmax_ref(const std::vector<float>& z, int64_t rows, int64_t cols) {
  std::vector<double> p(z.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = z[r * cols];
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, static_cast<double>(z[r * cols + c]));
    double s = 0.0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(z[r * cols + c] - m);
    for (int64_t c = 0; c < cols; ++c) p[r * cols + c] = std::exp(z[r * cols + c] - m) / s;
  }
  return p;
}

// mean_r (log sum_c exp(z[r, c]) - z[r, y_r]), in double.
double cross_entropy_ref(const std::vector<float>& z, const std::vector<int32_t>& y, int64_t rows,
                         int64_t cols) {
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    double m = z[r * cols];
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, static_cast<double>(z[r * cols + c]));
    double s = 0.0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(z[r * cols + c] - m);
    total += m + std::log(s) - z[r * cols + y[r]];
  }
  return total / static_cast<double>(rows);
}

TEST(LossValues, CrossEntropyMatchesLogSumExpLoop) {
  Generator g(1);
  Tensor z = Tensor::uniform({7, 5}, -3.f, 3.f, g);
  Tensor y = rand_labels(7, 5, 2);
  const double ref = cross_entropy_ref(z.to_vector(), y.to_vector_i32(), 7, 5);
  EXPECT_NEAR(ops::cross_entropy(z, y).item(), ref, 1e-6 * std::max(1.0, std::fabs(ref)));
  EXPECT_EQ(ops::cross_entropy(z, y).shape(), Shape{});
}

TEST(LossValues, CrossEntropyOfUniformLogitsIsLogK) {
  Tensor z = Tensor::full({4, 10}, 3.f);
  Tensor y = Tensor::from_vector_i32({0, 3, 9, 5}, {4});
  EXPECT_NEAR(ops::cross_entropy(z, y).item(), std::log(10.0), 1e-6);
}

TEST(LossValues, CrossEntropyStableAtLargeLogits) {
  // Logits of magnitude 1e4: exp overflows unless shifted, and the per-row losses
  // (a few units) must survive next to terms of 1e4.
  Tensor z = Tensor::from_vector({1e4f, 1e4f - 2.f, -1e4f, -1e4f, 1e4f, 1e4f - 0.5f}, {2, 3});
  Tensor y = Tensor::from_vector_i32({1, 2}, {2});
  z.set_requires_grad(true);
  Tensor loss = ops::cross_entropy(z, y);
  const double ref = cross_entropy_ref(z.to_vector(), y.to_vector_i32(), 2, 3);
  ASSERT_TRUE(std::isfinite(loss.item()));
  EXPECT_NEAR(loss.item(), ref, 1e-5 * ref);
  loss.backward();
  const auto p = softmax_ref(z.to_vector(), 2, 3);
  const auto grad = z.grad().to_vector();
  const int32_t labels[2] = {1, 2};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(grad[r * 3 + c], (p[r * 3 + c] - (c == labels[r])) / 2.0, 1e-6) << r << "," << c;
}

TEST(LossValues, SoftmaxMatchesLoopAndRowsSumToOne) {
  Generator g(3);
  Tensor z = Tensor::uniform({6, 9}, -5.f, 5.f, g);
  const auto ref = softmax_ref(z.to_vector(), 6, 9);
  const auto got = ops::softmax(z).to_vector();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-6) << i;
  for (int r = 0; r < 6; ++r) {
    double s = 0.0;
    for (int c = 0; c < 9; ++c) s += got[r * 9 + c];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  const auto big = ops::softmax(Tensor::from_vector({1e4f, 1e4f, -1e4f}, {1, 3})).to_vector();
  EXPECT_EQ(big, (std::vector<float>{0.5f, 0.5f, 0.f}));
}

TEST(LossValues, NanLogitPoisonsItsRowOnly) {
  Tensor z = Tensor::from_vector({1.f, NAN, 2.f, 1.f, 2.f, 3.f}, {2, 3});
  const auto p = ops::softmax(z).to_vector();
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(std::isnan(p[c]));
  for (int c = 3; c < 6; ++c) EXPECT_FALSE(std::isnan(p[c]));
  EXPECT_TRUE(std::isnan(ops::cross_entropy(z, Tensor::from_vector_i32({0, 0}, {2})).item()));
}

TEST(LossValues, LabelOutOfRangeNamesTheRow) {
  Tensor z = Tensor::zeros({4, 3});
  for (int32_t bad : {3, -1}) {
    try {
      ops::cross_entropy(z, Tensor::from_vector_i32({0, 2, bad, 1}, {4}));
      FAIL() << "expected std::invalid_argument for label " << bad;
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("row 2"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
    }
  }
}

TEST(LossValues, ShapeErrorsNameBothShapes) {
  try {
    ops::cross_entropy(Tensor::zeros({4, 3}), Tensor::from_vector_i32({0, 1, 2}, {3}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[4, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
  }
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({3}), Tensor::from_vector_i32({0}, {1})),
               ShapeError);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({0, 3}), Tensor::from_vector_i32({}, {0})),
               ShapeError);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 3}), Tensor::zeros({2})),
               std::invalid_argument);
  EXPECT_THROW(ops::softmax(Tensor::zeros({})), ShapeError);  // no axis to normalize over
}

TEST(LossGrad, CrossEntropyWrtLogits) {
  auto z = testing::random_leaf({5, 4}, 4, -2.f, 2.f);
  Tensor y = rand_labels(5, 4, 5);
  EXPECT_GRADCHECK([y](const Inputs& in) { return ops::cross_entropy(in[0], y); }, {z});
  // Composed downstream: the upstream gradient scales the fused backward.
  EXPECT_GRADCHECK(
      [y](const Inputs& in) { return ops::mul_scalar(ops::cross_entropy(in[0], y), -3.f); }, {z});
}

TEST(LossGrad, CrossEntropyBackwardIsSoftmaxMinusOnehotOverN) {
  Generator g(6);
  Tensor z = Tensor::uniform({3, 4}, -2.f, 2.f, g);
  z.set_requires_grad(true);
  const std::vector<int32_t> labels{3, 0, 2};
  ops::cross_entropy(z, Tensor::from_vector_i32(labels, {3})).backward();
  const auto p = softmax_ref(z.to_vector(), 3, 4);
  const auto grad = z.grad().to_vector();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      EXPECT_NEAR(grad[r * 4 + c], (p[r * 4 + c] - (c == labels[r])) / 3.0, 1e-7);
}

TEST(LossGrad, SoftmaxRows) {
  auto z = testing::random_leaf({4, 6}, 7, -2.f, 2.f);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::softmax(in[0]); }, {z});
}

// ---- CUDA parity: same op, same inputs, CPU twin as reference ----

using testing::expect_forward_backward_parity;

TEST(LossCuda, CrossEntropyParity) {
  IPG_REQUIRE_CUDA();
  // 10 classes (CIFAR/MNIST), 1000 (ImageNet: many strides per lane), 33 (a ragged warp).
  for (int64_t k : {10, 1000, 33}) {
    auto z = testing::random_leaf({300, k}, 10 + k, -8.f, 8.f);
    Tensor y = rand_labels(300, static_cast<int32_t>(k), 20 + k);
    expect_forward_backward_parity(
        [y](const Inputs& in) { return ops::cross_entropy(in[0], y.to(in[0].device())); }, {z},
        1e-6, 1e-5);
  }
}

TEST(LossCuda, CrossEntropyLargeLogitsParity) {
  IPG_REQUIRE_CUDA();
  auto z = testing::random_leaf({64, 10}, 31, -1e4f, 1e4f);
  Tensor y = rand_labels(64, 10, 32);
  expect_forward_backward_parity(
      [y](const Inputs& in) { return ops::cross_entropy(in[0], y.to(in[0].device())); }, {z}, 1e-6,
      1e-5);
}

TEST(LossCuda, LabelOutOfRangeThrowsOnCuda) {
  IPG_REQUIRE_CUDA();
  Tensor z = Tensor::zeros({3, 4}, Device::cuda(0));
  Tensor y = Tensor::from_vector_i32({0, 1, 4}, {3}, Device::cuda(0));
  EXPECT_THROW(ops::cross_entropy(z, y), std::invalid_argument);
}

TEST(LossCuda, SoftmaxParity) {
  IPG_REQUIRE_CUDA();
  for (int64_t k : {10, 1000, 33}) {
    auto z = testing::random_leaf({200, k}, 40 + k, -6.f, 6.f);
    expect_forward_backward_parity([](const Inputs& in) { return ops::softmax(in[0]); }, {z}, 1e-6,
                                   1e-5);
  }
}

TEST(LossCuda, CrossEntropyIsDeterministic) {
  IPG_REQUIRE_CUDA();
  Generator g(50);
  Tensor z = Tensor::uniform({5000, 10}, -4.f, 4.f, g, Device::cuda(0));
  Tensor y = rand_labels(5000, 10, 51).to(Device::cuda(0));
  const float first = ops::cross_entropy(z, y).item();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ops::cross_entropy(z, y).item(), first);
}

}  // namespace
}  // namespace ipg
