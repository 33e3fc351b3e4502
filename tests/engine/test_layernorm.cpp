// layer_norm: values against a double loop (with and without gamma and beta, rows far from
// zero), gradients in x, gamma and beta against finite differences (a value read twice, frozen
// parameters), the same bits for any thread count, bad arguments, and CUDA parity.
#include <gtest/gtest.h>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layernorm.h"
#include "tests/support/gradcheck.h"
#include "tests/support/omp_threads.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;

// The formula in double, row by row over the last axis.
std::vector<double> reference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              double eps) {
  const auto v = x.to_vector();
  const int64_t cols = x.dim(x.ndim() - 1), rows = x.numel() / cols;
  const auto g = gamma.defined() ? gamma.to_vector() : std::vector<float>(size_t(cols), 1.f);
  const auto b = beta.defined() ? beta.to_vector() : std::vector<float>(size_t(cols), 0.f);
  std::vector<double> y(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) m += v[size_t(r * cols + c)];
    m /= double(cols);
    for (int64_t c = 0; c < cols; ++c) var += std::pow(v[size_t(r * cols + c)] - m, 2);
    var /= double(cols);
    for (int64_t c = 0; c < cols; ++c)
      y[size_t(r * cols + c)] = (v[size_t(r * cols + c)] - m) / std::sqrt(var + eps) * g[size_t(c)] + b[size_t(c)];
  }
  return y;
}

void expect_matches_reference(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                              double atol) {
  const auto want = reference(x, gamma, beta, eps);
  const auto got = ops::layer_norm(x, gamma, beta, eps).to_vector();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], atol + 2e-6 * std::fabs(want[i])) << "element " << i;
}

TEST(LayerNormValues, MatchTheFormulaInDouble) {
  for (const Shape& shape : {Shape{5, 7}, Shape{2, 3, 33}, Shape{4, 1}, Shape{3, 2, 2, 200}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    // Around 0 to float rounding; rows around 1000 (std 0.6) lose what x - mean in float
    // loses (an ulp of 1000 over the std, 1e-4), where a one-pass variance (E[x^2] -
    // E[x]^2 in float) would be off by tens of percent.
    for (float centre : {0.f, 1000.f}) {
      SCOPED_TRACE(centre);
      const double atol = centre == 0 ? 2e-6 : 2e-4;
      const Tensor x = testing::random_tensor(shape, 1, centre - 1, centre + 1);
      const Tensor gamma = testing::random_tensor({cols}, 2, 0.5f, 1.5f),
                   beta = testing::random_tensor({cols}, 3);
      expect_matches_reference(x, gamma, beta, 1e-5f, atol);
      expect_matches_reference(x, gamma, Tensor(), 1e-6f, atol);
      expect_matches_reference(x, Tensor(), Tensor(), 1e-3f, atol);
    }
  }
  // A constant row: zero deviation, so y = beta whatever eps.
  const Tensor beta = testing::random_tensor({6}, 4);
  const auto y = ops::layer_norm(Tensor::full({2, 6}, 3.f), Tensor::ones({6}), beta).to_vector();
  const auto b = beta.to_vector();
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], b[i % 6]);
}

TEST(LayerNormGrad, InputAndParametersAgainstFiniteDifferences) {
  for (const Shape& shape : {Shape{4, 6}, Shape{2, 3, 17}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    auto x = testing::random_tensor(shape, 10, -2.f, 2.f, true);
    auto gamma = testing::random_tensor({cols}, 11, 0.5f, 1.5f, true),
         beta = testing::random_tensor({cols}, 12, -1, 1, true);
    auto f = [](const Inputs& in) { return ops::layer_norm(in[0], in[1], in[2], 1e-5f); };
    EXPECT_GRADCHECK(f, {x, gamma, beta});
    EXPECT_GRADCHECK([](const Inputs& in) { return ops::layer_norm(in[0], in[1], Tensor()); },
                     {x, gamma});
    EXPECT_GRADCHECK([](const Inputs& in) { return ops::layer_norm(in[0], Tensor(), Tensor()); }, {x});
  }
}

// x read by two layer norms: the second backward adds into the gradient the first wrote.
TEST(LayerNormGrad, AValueReadTwiceAccumulates) {
  auto x = testing::random_tensor({3, 9}, 13, -2.f, 2.f, true);
  const Tensor g1 = testing::random_tensor({9}, 14, 0.5f, 1.5f), b1 = testing::random_tensor({9}, 15);
  EXPECT_GRADCHECK(
      [&](const Inputs& in) {
        return ops::add(ops::layer_norm(in[0], g1, b1), ops::layer_norm(in[0], Tensor(), Tensor(), 1e-2f));
      },
      {x});
}

TEST(LayerNormGrad, FrozenParametersGetNoGradientAndParametersAlone) {
  auto x = testing::random_tensor({4, 5}, 16, -1, 1, true);
  const Tensor gamma = testing::random_tensor({5}, 17, 0.5f, 1.5f), beta = testing::random_tensor({5}, 18);
  auto f = [](const Inputs& in) { return ops::layer_norm(in[0], in[1], in[2]); };
  EXPECT_GRADCHECK(f, {x, gamma, beta});
  EXPECT_FALSE(gamma.grad().defined());
  EXPECT_FALSE(beta.grad().defined());
  const Tensor x2 = testing::random_tensor({4, 5}, 19, -1, 1);
  auto g2 = testing::random_tensor({5}, 20, 0.5f, 1.5f, true), b2 = testing::random_tensor({5}, 21, -1, 1, true);
  EXPECT_GRADCHECK(f, {x2, g2, b2});
}

TEST(LayerNormValues, SameBitsForAnyThreadCount) {
  // Large enough for the parallel paths (rows * cols >= 2^14), the parameter gradient in
  // more than one block of columns.
  auto x = testing::random_tensor({40, 8, 100}, 22, -1.f, 3.f, true);
  auto gamma = testing::random_tensor({100}, 23, 0.5f, 1.5f, true),
       beta = testing::random_tensor({100}, 24, -1, 1, true);
  const Tensor r = testing::random_tensor(x.shape(), 25);
  auto run = [&](int threads) {
    return testing::with_threads(threads, [&] {
      x.zero_grad();
      gamma.zero_grad();
      beta.zero_grad();
      const Tensor y = ops::layer_norm(x, gamma, beta);
      y.backward(r);
      return std::vector<std::vector<float>>{y.to_vector(), x.grad().to_vector(),
                                             gamma.grad().to_vector(), beta.grad().to_vector()};
    });
  };
  EXPECT_EQ(run(1), run(3));
}

TEST(LayerNormValues, BadArgumentsAreErrors) {
  const Tensor x = Tensor::zeros({2, 4});
  EXPECT_THROW(ops::layer_norm(x, Tensor::ones({3}), Tensor()), ShapeError);
  EXPECT_THROW(ops::layer_norm(x, Tensor::ones({4}), Tensor::zeros({4, 1})), ShapeError);
  EXPECT_THROW(ops::layer_norm(Tensor::zeros({2, 0}), Tensor(), Tensor()), ShapeError);
  EXPECT_THROW(ops::layer_norm(x, Tensor(), Tensor(), 0.f), std::invalid_argument);
  EXPECT_THROW(ops::layer_norm(x, Tensor(), Tensor(), NAN), std::invalid_argument);
}

// ---- CUDA parity: same op, same inputs, CPU twin as reference ----

TEST(LayerNormCuda, ParityWithAndWithoutParameters) {
  IPG_REQUIRE_CUDA();
  // Rows shorter than a warp, a ViT's 192, and wider than a warp many times.
  for (const Shape& shape : {Shape{300, 7}, Shape{100, 65, 192}, Shape{16, 1000}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    auto x = testing::random_tensor(shape, 30, -1.f, 3.f, true);
    auto gamma = testing::random_tensor({cols}, 31, 0.5f, 1.5f, true),
         beta = testing::random_tensor({cols}, 32, -1, 1, true);
    auto f = [](const Inputs& in) { return ops::layer_norm(in[0], in[1], in[2]); };
    testing::expect_forward_backward_parity(f, {x, gamma, beta}, 1e-5, 1e-4);
    testing::expect_forward_backward_parity(
        [](const Inputs& in) { return ops::layer_norm(in[0], in[1], Tensor()); },
        {x, gamma.detach()}, 1e-5, 1e-4);
    testing::expect_forward_backward_parity(
        [](const Inputs& in) { return ops::layer_norm(in[0], Tensor(), Tensor()); }, {x}, 1e-5, 1e-4);
  }
}

TEST(LayerNormCuda, SameBitsRunToRun) {
  IPG_REQUIRE_CUDA();
  Tensor x = testing::random_tensor({64, 65, 192}, 33, -1.f, 3.f).to(Device::cuda(0));
  x.set_requires_grad(true);
  Tensor gamma = testing::random_tensor({192}, 34, 0.5f, 1.5f).to(Device::cuda(0));
  gamma.set_requires_grad(true);
  const Tensor r = testing::random_tensor(x.shape(), 35).to(Device::cuda(0));
  auto run = [&] {
    x.zero_grad();
    gamma.zero_grad();
    const Tensor y = ops::layer_norm(x, gamma, Tensor());
    y.backward(r);
    return std::vector<std::vector<float>>{y.to_vector(), x.grad().to_vector(),
                                           gamma.grad().to_vector()};
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace ipg
