// batch_norm: values against plain loops (training and eval, 4-D and 2-D), running
// statistics against PyTorch's update rule, gradients against finite differences in both
// modes, frozen parameters, determinism across thread counts, and CUDA parity.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "engine/error.h"
#include "engine/ops/batchnorm.h"
#include "engine/random.h"
#include "tests/support/gradcheck.h"
#include "tests/support/omp_threads.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;

// x viewed as [n, c, s].
struct Dims {
  int64_t n, c, s;
};
Dims dims_of(const Tensor& x) {
  return {x.dim(0), x.dim(1), x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1};
}

// Per-channel mean and biased variance, by plain double loops.
void reference_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const Dims d = dims_of(x);
  const auto v = x.to_vector();
  mean.assign(d.c, 0.0);
  var.assign(d.c, 0.0);
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t s = 0; s < d.s; ++s) mean[c] += v[(n * d.c + c) * d.s + s];
  for (auto& m : mean) m /= static_cast<double>(d.n * d.s);
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t s = 0; s < d.s; ++s) {
        const double dev = v[(n * d.c + c) * d.s + s] - mean[c];
        var[c] += dev * dev;
      }
  for (auto& q : var) q /= static_cast<double>(d.n * d.s);
}

std::vector<float> reference_normalize(const Tensor& x, const std::vector<double>& mean,
                                       const std::vector<double>& var, const Tensor& gamma,
                                       const Tensor& beta, double eps) {
  const Dims d = dims_of(x);
  const auto v = x.to_vector(), g = gamma.to_vector(), b = beta.to_vector();
  std::vector<float> y(v.size());
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t c = 0; c < d.c; ++c)
      for (int64_t s = 0; s < d.s; ++s) {
        const int64_t i = (n * d.c + c) * d.s + s;
        y[i] = static_cast<float>((v[i] - mean[c]) / std::sqrt(var[c] + eps) * g[c] + b[c]);
      }
  return y;
}

using testing::expect_close;

TEST(BatchNormValues, TrainingNormalizesWithBatchStatistics) {
  for (const Shape& shape : {Shape{4, 3, 5, 6}, Shape{7, 5}}) {
    // An offset mean and a spread unlike 1: the normalization has work to do.
    const Tensor x = testing::random_tensor(shape, 1, 2.f, 5.f);
    const int64_t c = shape[1];
    const Tensor gamma = testing::random_tensor({c}, 2, 0.5f, 1.5f),
                 beta = testing::random_tensor({c}, 3);
    Tensor rm = Tensor::zeros({c}), rv = Tensor::ones({c});
    const Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, true);
    std::vector<double> mean, var;
    reference_stats(x, mean, var);
    EXPECT_EQ(y.shape(), shape);
    expect_close(reference_normalize(x, mean, var, gamma, beta, 1e-5), y.to_vector(), 1e-5, 1e-5);
  }
}

TEST(BatchNormValues, TrainingUpdatesRunningStatisticsWithUnbiasedVariance) {
  const Tensor x = testing::random_tensor({3, 4, 2, 5}, 4, -3.f, 1.f);
  const Tensor gamma = Tensor::ones({4}), beta = Tensor::zeros({4});
  const Tensor rm0 = testing::random_tensor({4}, 5),
               rv0 = testing::random_tensor({4}, 6, 0.5f, 2.f);
  for (float momentum : {0.1f, 0.35f}) {
    Tensor rm = rm0.clone(), rv = rv0.clone();
    ops::batch_norm(x, gamma, beta, rm, rv, true, momentum);
    std::vector<double> mean, var;
    reference_stats(x, mean, var);
    const double count = 3 * 2 * 5;
    std::vector<float> want_m(4), want_v(4);
    const auto m0 = rm0.to_vector(), v0 = rv0.to_vector();
    for (int c = 0; c < 4; ++c) {
      want_m[c] = static_cast<float>((1 - momentum) * m0[c] + momentum * mean[c]);
      want_v[c] =
          static_cast<float>((1 - momentum) * v0[c] + momentum * var[c] * count / (count - 1));
    }
    expect_close(want_m, rm.to_vector(), 1e-6, 1e-5);
    expect_close(want_v, rv.to_vector(), 1e-6, 1e-5);
  }
}

TEST(BatchNormValues, EvalUsesRunningStatisticsAndLeavesThemAlone) {
  const Tensor x = testing::random_tensor({2, 3, 4, 4}, 7, -2.f, 2.f);
  const Tensor gamma = testing::random_tensor({3}, 8, 0.5f, 1.5f),
               beta = testing::random_tensor({3}, 9);
  Tensor rm = testing::random_tensor({3}, 10), rv = testing::random_tensor({3}, 11, 0.5f, 2.f);
  const auto m0 = rm.to_vector(), v0 = rv.to_vector();
  const float eps = 1.001e-5f;  // Keras ResNet50's
  const Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, false, 0.1f, eps);
  const std::vector<double> mean(m0.begin(), m0.end()), var(v0.begin(), v0.end());
  expect_close(reference_normalize(x, mean, var, gamma, beta, eps), y.to_vector(), 1e-5, 1e-5);
  EXPECT_EQ(rm.to_vector(), m0);
  EXPECT_EQ(rv.to_vector(), v0);
}

TEST(BatchNormValues, ShapeErrorsNameTheShapes) {
  const Tensor x = Tensor::zeros({2, 3, 4, 4});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  try {
    ops::batch_norm(x, Tensor::ones({4}), Tensor::zeros({3}), rm, rv, false);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("gamma [4]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 3, 4, 4]"), std::string::npos) << msg;
  }
  Tensor rv_bad = Tensor::ones({2});
  EXPECT_THROW(ops::batch_norm(x, Tensor::ones({3}), Tensor::zeros({3}), rm, rv_bad, false),
               ShapeError);
  EXPECT_THROW(ops::batch_norm(Tensor::zeros({2, 3, 4}), Tensor::ones({3}), Tensor::zeros({3}), rm,
                               rv, false),
               ShapeError);
  // One value per channel has no unbiased variance.
  EXPECT_THROW(
      ops::batch_norm(Tensor::zeros({1, 3}), Tensor::ones({3}), Tensor::zeros({3}), rm, rv, true),
      ShapeError);
}

// batch_norm with its buffers held by the closure, for gradcheck (which calls it many
// times; in training mode the buffer updates do not affect the output).
std::function<Tensor(const Inputs&)> bn_fn(int64_t c, bool training) {
  Tensor rm = testing::random_tensor({c}, 20), rv = testing::random_tensor({c}, 21, 0.5f, 2.f);
  return [rm, rv, training](const Inputs& in) mutable {
    return ops::batch_norm(in[0], in[1], in[2], rm, rv, training);
  };
}

TEST(BatchNormGrad, TrainingModeThroughBatchStatistics) {
  for (const Shape& shape : {Shape{3, 2, 3, 4}, Shape{6, 3}}) {
    const int64_t c = shape[1];
    auto x = testing::random_tensor(shape, 22, -2.f, 2.f, true);
    auto gamma = testing::random_tensor({c}, 23, 0.5f, 1.5f, true),
         beta = testing::random_tensor({c}, 24, -1, 1, true);
    EXPECT_GRADCHECK(bn_fn(c, true), {x, gamma, beta});
  }
}

TEST(BatchNormGrad, EvalModeIsAffine) {
  for (const Shape& shape : {Shape{3, 2, 3, 4}, Shape{6, 3}}) {
    const int64_t c = shape[1];
    auto x = testing::random_tensor(shape, 25, -2.f, 2.f, true);
    auto gamma = testing::random_tensor({c}, 26, 0.5f, 1.5f, true),
         beta = testing::random_tensor({c}, 27, -1, 1, true);
    EXPECT_GRADCHECK(bn_fn(c, false), {x, gamma, beta});
  }
}

TEST(BatchNormGrad, FrozenParametersGetNoGradient) {
  for (bool training : {true, false}) {
    auto x = testing::random_tensor({4, 3, 2, 2}, 28, -1, 1, true);
    const Tensor gamma = testing::random_tensor({3}, 29, 0.5f, 1.5f),
                 beta = testing::random_tensor({3}, 30);
    EXPECT_GRADCHECK(bn_fn(3, training), {x, gamma, beta});
    EXPECT_FALSE(gamma.grad().defined());
    EXPECT_FALSE(beta.grad().defined());
  }
}

TEST(BatchNormGrad, ParameterGradientsWithoutInputGradient) {
  for (bool training : {true, false}) {
    const Tensor x = testing::random_tensor({4, 3, 2, 2}, 31, -1, 1);
    auto gamma = testing::random_tensor({3}, 32, 0.5f, 1.5f, true),
         beta = testing::random_tensor({3}, 33, -1, 1, true);
    EXPECT_GRADCHECK(bn_fn(3, training), {x, gamma, beta});
  }
}

TEST(BatchNormValues, SameBitsForAnyThreadCount) {
  // Large enough for the parallel paths (planes * s >= 2^14).
  auto x = testing::random_tensor({16, 8, 16, 16}, 34, -1.f, 3.f, true);
  auto gamma = testing::random_tensor({8}, 35, 0.5f, 1.5f, true),
       beta = testing::random_tensor({8}, 36, -1, 1, true);
  const Tensor r = testing::random_tensor(x.shape(), 37);
  auto run = [&](int threads) {
    return testing::with_threads(threads, [&] {
      x.zero_grad();
      gamma.zero_grad();
      beta.zero_grad();
      Tensor rm = Tensor::zeros({8}), rv = Tensor::ones({8});
      const Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, true);
      y.backward(r);
      return std::vector<std::vector<float>>{
          y.to_vector(),        rm.to_vector(),           rv.to_vector(),
          x.grad().to_vector(), gamma.grad().to_vector(), beta.grad().to_vector()};
    });
  };
  EXPECT_EQ(run(1), run(3));
}

// ---- CUDA parity: same op, same inputs, CPU twin as reference ----

using testing::expect_forward_backward_parity;

TEST(BatchNormCuda, TrainingParityIncludingRunningStatistics) {
  IPG_REQUIRE_CUDA();
  for (const Shape& shape : {Shape{8, 16, 12, 12}, Shape{64, 4, 32, 32}, Shape{300, 10}}) {
    const int64_t c = shape[1];
    auto x = testing::random_tensor(shape, 40, -1.f, 3.f, true);
    auto gamma = testing::random_tensor({c}, 41, 0.5f, 1.5f, true),
         beta = testing::random_tensor({c}, 42, -1, 1, true);
    const Tensor rm0 = testing::random_tensor({c}, 43),
                 rv0 = testing::random_tensor({c}, 44, 0.5f, 2.f);
    Tensor rm_cpu = rm0.clone(), rv_cpu = rv0.clone();
    Tensor rm_gpu = rm0.to(Device::cuda(0)), rv_gpu = rv0.to(Device::cuda(0));
    expect_forward_backward_parity(
        [&](const Inputs& in) {
          const bool gpu = in[0].device().is_cuda();
          return ops::batch_norm(in[0], in[1], in[2], gpu ? rm_gpu : rm_cpu, gpu ? rv_gpu : rv_cpu,
                                 true, 0.2f);
        },
        {x, gamma, beta}, 1e-4, 1e-4);
    EXPECT_PARITY(rm_cpu, rm_gpu, 1e-6, 1e-5);
    EXPECT_PARITY(rv_cpu, rv_gpu, 1e-6, 1e-5);
  }
}

TEST(BatchNormCuda, EvalParityWithAndWithoutParameterGradients) {
  IPG_REQUIRE_CUDA();
  auto x = testing::random_tensor({8, 16, 12, 12}, 45, -2.f, 2.f, true);
  auto gamma = testing::random_tensor({16}, 46, 0.5f, 1.5f, true),
       beta = testing::random_tensor({16}, 47, -1, 1, true);
  const Tensor rm = testing::random_tensor({16}, 48),
               rv = testing::random_tensor({16}, 49, 0.5f, 2.f);
  Tensor rm_gpu = rm.to(Device::cuda(0)), rv_gpu = rv.to(Device::cuda(0));
  Tensor rm_cpu = rm.clone(), rv_cpu = rv.clone();
  auto f = [&](const Inputs& in) {
    const bool gpu = in[0].device().is_cuda();
    return ops::batch_norm(in[0], in[1], in[2], gpu ? rm_gpu : rm_cpu, gpu ? rv_gpu : rv_cpu,
                           false);
  };
  expect_forward_backward_parity(f, {x, gamma, beta}, 1e-5, 1e-5);
  expect_forward_backward_parity(f, {x, gamma.detach(), beta.detach()}, 1e-5, 1e-5);
}

TEST(BatchNormCuda, SameBitsRunToRun) {
  IPG_REQUIRE_CUDA();
  Tensor x = testing::random_tensor({32, 16, 16, 16}, 50, -1.f, 3.f).to(Device::cuda(0));
  x.set_requires_grad(true);
  Tensor gamma = Tensor::ones({16}, Device::cuda(0)).set_requires_grad(true);
  Tensor beta = Tensor::zeros({16}, Device::cuda(0)).set_requires_grad(true);
  const Tensor r = testing::random_tensor(x.shape(), 51).to(Device::cuda(0));
  auto run = [&] {
    x.zero_grad();
    gamma.zero_grad();
    beta.zero_grad();
    Tensor rm = Tensor::zeros({16}, Device::cuda(0)), rv = Tensor::ones({16}, Device::cuda(0));
    const Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, true);
    y.backward(r);
    return std::vector<std::vector<float>>{y.to_vector(), rv.to_vector(), x.grad().to_vector(),
                                           gamma.grad().to_vector()};
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace ipg
