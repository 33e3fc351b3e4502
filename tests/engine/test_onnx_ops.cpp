// The element and shape ops ONNX image classifiers need besides convolution: sigmoid,
// hard_sigmoid, hard_swish, relu6 (clamp), erf (GELU), softmax along the last axis of any rank,
// concat along any axis, squeeze-excitation broadcasting ([n, C, H, W] * [n, C, 1, 1]) and
// ONNX AveragePool's defaults. Values against formulas written here (in double), finite-
// difference gradients on the CPU, CUDA parity (skipped visibly without a GPU).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/ops/clamp.h"
#include "engine/ops/concat.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;
using testing::random_leaf;
using testing::random_tensor;

void expect_values(const std::vector<double>& ref, const Tensor& got, double tol = 1e-6) {
  std::vector<float> r(ref.begin(), ref.end());
  const auto res = testing::compare_values(r, got.to_vector(), tol, tol);
  EXPECT_TRUE(res.ok) << res.message;
}

std::vector<double> map(const Tensor& x, double (*f)(double)) {
  std::vector<double> out;
  for (float v : x.to_vector()) out.push_back(f(v));
  return out;
}

// Inputs that cover every piece of the piecewise activations (|x| up to 5) and the far
// tails of the sigmoid.
Tensor activation_input() { return random_tensor({4, 3, 5, 5}, 11, -5.f, 5.f); }

TEST(OnnxOps, ActivationValues) {
  const Tensor x = activation_input();
  expect_values(map(x, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }), ops::sigmoid(x));
  expect_values(map(x, [](double v) { return v * std::min(std::max(v + 3, 0.0), 6.0) / 6; }),
                ops::hard_swish(x));
  expect_values(map(x, [](double v) { return std::min(std::max(0.2 * v + 0.5, 0.0), 1.0); }),
                ops::hard_sigmoid(x));
  expect_values(map(x, [](double v) { return std::min(std::max(v / 6 + 0.5, 0.0), 1.0); }),
                ops::hard_sigmoid(x, 1.f / 6, 0.5f));
  expect_values(map(x, [](double v) { return std::min(std::max(2 * v, 0.0), 6.0); }),
                ops::relu6(ops::mul_scalar(x, 2.f)));
  expect_values(map(x, [](double v) { return std::erf(v); }), ops::erf(x));
  const auto gelu = [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); };
  expect_values(map(x, gelu), ops::gelu(x));
  // And the same function written out as exporters write it, within rounding.
  const Tensor written = ops::mul_scalar(
      ops::mul(x, ops::add_scalar(ops::erf(ops::mul_scalar(x, 1 / std::sqrt(2.f))), 1.f)), 0.5f);
  expect_values(map(written, [](double v) { return v; }), ops::gelu(x));
}

TEST(OnnxOps, SigmoidStaysFiniteInTheTails) {
  const Tensor x = Tensor::from_vector({-1000.f, -90.f, 0.f, 90.f, 1000.f}, {5});
  const std::vector<float> y = ops::sigmoid(x).to_vector();
  EXPECT_EQ(y[0], 0.f);
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(y[4], 1.f);
  for (float v : y) EXPECT_TRUE(std::isfinite(v));
}

TEST(OnnxOps, ActivationGradients) {
  const Tensor x = random_leaf({3, 4, 5}, 12, -5.f, 5.f);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::sigmoid(in[0]); }, {x});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::hard_swish(in[0]); }, {x});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::hard_sigmoid(in[0]); }, {x});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::hard_sigmoid(in[0], 1.f / 6, 0.5f); }, {x});
  const Tensor e = random_leaf({3, 4, 5}, 14, -2.5f, 2.5f);  // where erf still bends
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::erf(in[0]); }, {e});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::gelu(in[0]); }, {e});
  const Tensor y = random_leaf({3, 4, 5}, 13, -3.f, 9.f);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::relu6(in[0]); }, {y});
}

// At and beyond the bounds the clamped activations pass no gradient; inside they do.
TEST(OnnxOps, ClampedActivationsGradientOutside) {
  Tensor x = Tensor::from_vector({-4.f, -2.5f, 0.f, 2.5f, 4.f, 6.f, 7.f}, {7});
  x.set_requires_grad(true);
  ops::sum(ops::relu6(x)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 0, 0, 1, 1, 0, 0}));
  Tensor z = Tensor::from_vector({-4.f, -2.5f, 0.f, 2.5f, 4.f}, {5});
  z.set_requires_grad(true);
  ops::sum(ops::hard_sigmoid(z)).backward();  // alpha 0.2, beta 0.5: linear on (-2.5, 2.5)
  EXPECT_EQ(z.grad().to_vector(), (std::vector<float>{0, 0, 0.2f, 0, 0}));
}

// Softmax over the last axis of a 4-D tensor (ONNX opset 13's default axis -1).
TEST(OnnxOps, SoftmaxLastAxisOfAnyRank) {
  const Tensor x = random_tensor({2, 3, 4, 5}, 14, -4.f, 4.f);
  const std::vector<float> v = x.to_vector();
  std::vector<double> ref(v.size());
  for (size_t r = 0; r < v.size() / 5; ++r) {
    double sum = 0;
    for (size_t k = 0; k < 5; ++k) sum += std::exp(double(v[r * 5 + k]));
    for (size_t k = 0; k < 5; ++k) ref[r * 5 + k] = std::exp(double(v[r * 5 + k])) / sum;
  }
  const Tensor y = ops::softmax(x);
  EXPECT_EQ(y.shape(), x.shape());
  expect_values(ref, y);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::softmax(in[0]); },
                   {random_leaf({2, 3, 4}, 15, -2.f, 2.f)});
}

// out[o, (offset of part k) + j] per outer slice o, built by hand.
std::vector<double> concat_ref(const std::vector<Tensor>& xs, int axis) {
  const Shape& s = xs[0].shape();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= s[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < s.size(); ++d) inner *= s[d];
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor& x : xs) {
      const std::vector<float> v = x.to_vector();
      const int64_t row = x.dim(axis) * inner;
      for (int64_t j = 0; j < row; ++j) out.push_back(v[size_t(o * row + j)]);
    }
  return out;
}

TEST(OnnxOps, ConcatAlongEachAxis) {
  for (int axis : {0, 1, 2, 3}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    std::vector<Tensor> xs;
    for (int64_t k = 0; k < 3; ++k) {
      Shape s{2, 3, 4, 5};
      s[size_t(axis)] = k + 1;
      xs.push_back(random_leaf(s, 20 + uint64_t(k)));
    }
    const Tensor y = ops::concat(xs, axis);
    Shape want{2, 3, 4, 5};
    want[size_t(axis)] = 6;
    EXPECT_EQ(y.shape(), want);
    expect_values(concat_ref(xs, axis), y, 0.0);
    EXPECT_EQ(ops::concat(xs, axis - 4).to_vector(), y.to_vector()) << "negative axis";
    EXPECT_GRADCHECK([axis](const Inputs& in) { return ops::concat(in, axis); }, xs);
  }
}

TEST(OnnxOps, ConcatGradientOnlyWhereAsked) {
  Tensor a = random_leaf({2, 2, 3, 3}, 30);
  Tensor frozen = random_tensor({2, 1, 3, 3}, 31);
  ops::sum(ops::concat({a, frozen, a}, 1)).backward();
  for (float g : a.grad().to_vector()) EXPECT_EQ(g, 2.f);  // a used twice
  EXPECT_FALSE(frozen.grad().defined());
}

TEST(OnnxOps, ConcatErrorsNameTheShapes) {
  try {
    ops::concat({Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({2, 3, 5, 4})}, 1);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3, 5, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::concat({Tensor::zeros({2, 3})}, 2), ShapeError);
  EXPECT_THROW(ops::concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3, 1})}, 0), ShapeError);
  EXPECT_THROW(ops::concat({}, 0), std::invalid_argument);
}

// Squeeze-excitation: x * sigmoid(gate) with the gate [n, C, 1, 1] broadcast over H, W.
TEST(OnnxOps, SqueezeExcitationBroadcast) {
  const Tensor x = random_leaf({2, 3, 4, 5}, 40), s = random_leaf({2, 3, 1, 1}, 41);
  const std::vector<float> xv = x.to_vector(), sv = s.to_vector();
  std::vector<double> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) ref[i] = double(xv[i]) * sv[i / 20];
  expect_values(ref, ops::mul(x, s));
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::mul(in[0], ops::sigmoid(in[1])); }, {x, s});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::add(in[0], in[1]); }, {x, s});
}

// ONNX AveragePool's default excludes the padding from the divisor (count_include_pad 0);
// with count_include_pad 1 the divisor is the whole kernel.
TEST(OnnxOps, AveragePoolOnnxDivisors) {
  const Tensor x = random_tensor({1, 2, 5, 6}, 50);
  const std::vector<float> v = x.to_vector();
  const int k = 3, st = 2, pad = 1;
  for (bool include : {false, true}) {
    std::vector<double> ref;
    const int oh = (5 + 2 * pad - k) / st + 1, ow = (6 + 2 * pad - k) / st + 1;
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          double sum = 0;
          int real = 0;
          for (int a = 0; a < k; ++a)
            for (int b = 0; b < k; ++b) {
              const int ih = i * st - pad + a, iw = j * st - pad + b;
              if (ih < 0 || ih >= 5 || iw < 0 || iw >= 6) continue;
              sum += v[size_t((c * 5 + ih) * 6 + iw)];
              ++real;
            }
          ref.push_back(sum / (include ? k * k : real));
        }
    expect_values(ref, ops::avg_pool2d(x, k, st, pad, include));
  }
}

// ---- CUDA parity: the CPU twin is the reference ----

TEST(OnnxOpsCuda, ActivationsParity) {
  IPG_REQUIRE_CUDA();
  const Tensor x = random_leaf({4, 3, 5, 5}, 60, -5.f, 5.f);
  using testing::expect_forward_backward_parity;
  expect_forward_backward_parity([](const Inputs& in) { return ops::sigmoid(in[0]); }, {x}, 1e-6,
                                 1e-5);
  expect_forward_backward_parity([](const Inputs& in) { return ops::hard_swish(in[0]); }, {x},
                                 1e-6, 1e-5);
  expect_forward_backward_parity(
      [](const Inputs& in) { return ops::hard_sigmoid(in[0], 1.f / 6, 0.5f); }, {x}, 1e-6, 1e-5);
  expect_forward_backward_parity([](const Inputs& in) { return ops::relu6(in[0]); }, {x}, 0, 0);
  // erff_hd and gelu_hd on both devices: the same bits.
  expect_forward_backward_parity([](const Inputs& in) { return ops::erf(in[0]); }, {x}, 0, 0);
  expect_forward_backward_parity([](const Inputs& in) { return ops::gelu(in[0]); }, {x}, 0, 0);
}

TEST(OnnxOpsCuda, SoftmaxConcatBroadcastPoolParity) {
  IPG_REQUIRE_CUDA();
  using testing::expect_forward_backward_parity;
  expect_forward_backward_parity([](const Inputs& in) { return ops::softmax(in[0]); },
                                 {random_leaf({2, 3, 4, 7}, 61, -4.f, 4.f)}, 1e-6, 1e-5);
  for (int axis : {0, 1, 3})
    expect_forward_backward_parity([axis](const Inputs& in) { return ops::concat(in, axis); },
                                   {random_leaf({2, 3, 4, 5}, 62), random_leaf({2, 3, 4, 5}, 63)},
                                   0, 0);
  expect_forward_backward_parity(
      [](const Inputs& in) { return ops::mul(in[0], ops::sigmoid(in[1])); },
      {random_leaf({2, 3, 4, 5}, 64), random_leaf({2, 3, 1, 1}, 65)}, 1e-6, 1e-5);
  expect_forward_backward_parity(
      [](const Inputs& in) { return ops::avg_pool2d(in[0], 3, 2, 1, false); },
      {random_leaf({2, 3, 7, 6}, 66)}, 1e-6, 1e-5);
}

}  // namespace
}  // namespace ipg
