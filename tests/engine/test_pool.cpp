// max_pool2d, avg_pool2d, global_avg_pool2d, zero_pad2d and dropout: values against plain
// loops, gradients against finite differences (dropout with a fixed mask), max-pool ties,
// dropout's mask statistics and reproducibility, shape errors, and CUDA parity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "engine/error.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;

struct PoolCase {
  Shape shape;
  int kernel, stride, pad;
  bool ceil = false;
};

// The configurations the zoo uses (2/2, 3/2 pad 1, 3/1 pad 1), plus an odd-sized input
// whose last row and column fall outside every window, and a non-square one. Then ceil
// mode: windows hanging over the end (2x2 at stride 2 on odd sizes, where the floor
// mode's vector path would read past a row; SqueezeNet's and GoogLeNet's 3/2), and one
// whose last window would start in the right padding and is dropped (5 wide, 2/2 pad 1).
const PoolCase kPoolCases[] = {{{2, 3, 8, 8}, 2, 2, 0},        {{2, 2, 7, 9}, 3, 2, 1},
                               {{1, 3, 6, 5}, 3, 1, 1},        {{2, 2, 7, 7}, 2, 2, 0},
                               {{1, 2, 9, 6}, 4, 3, 2},        {{2, 2, 7, 9}, 2, 2, 0, true},
                               {{1, 3, 10, 6}, 3, 2, 0, true}, {{2, 2, 7, 9}, 3, 2, 1, true},
                               {{1, 2, 5, 6}, 2, 2, 1, true}};

std::string case_str(const PoolCase& pc) {
  return shape_str(pc.shape) + " k" + std::to_string(pc.kernel) + " s" +
         std::to_string(pc.stride) + " p" + std::to_string(pc.pad) + (pc.ceil ? " ceil" : "");
}

// The windows start at t * stride - pad, t = 0, 1, ...: in floor mode those that fit the
// padded input; in ceil mode also the first that hangs over its end, unless it would
// start in the right padding (PyTorch's rule).
int64_t out_size(int64_t in, const PoolCase& pc) {
  int64_t n = 0;
  for (int64_t start = -pc.pad; start < in; start += pc.stride) {
    const bool fits = start + pc.kernel <= in + pc.pad;
    const bool overhang = pc.ceil && start - pc.stride + pc.kernel < in + pc.pad;
    if (fits || overhang) ++n;
  }
  return n;
}

enum class PoolKind { Max, AvgIncludePad, AvgExcludePad };

// Direct definition: each window over the padded input; padding is -inf for max and
// 0 for average (divided by the window's pixels inside the padded input, k*k unless a
// ceil-mode window hangs over the end, or by the real pixels only).
std::vector<float> reference_pool(const Tensor& x, const PoolCase& pc, PoolKind kind) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh = out_size(h, pc), ow = out_size(w, pc);
  const auto v = x.to_vector();
  std::vector<float> y;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0.0;
        int real = 0, padded = 0;
        for (int a = 0; a < pc.kernel; ++a)
          for (int b = 0; b < pc.kernel; ++b) {
            const int64_t r = i * pc.stride - pc.pad + a, c = j * pc.stride - pc.pad + b;
            if (r < h + pc.pad && c < w + pc.pad) ++padded;
            if (r < 0 || r >= h || c < 0 || c >= w) continue;
            const double val = v[(p * h + r) * w + c];
            best = std::max(best, val);
            sum += val;
            ++real;
          }
        if (kind == PoolKind::Max) y.push_back(static_cast<float>(best));
        if (kind == PoolKind::AvgIncludePad) y.push_back(static_cast<float>(sum / padded));
        if (kind == PoolKind::AvgExcludePad) y.push_back(static_cast<float>(sum / real));
      }
  return y;
}

using testing::expect_close;

TEST(PoolValues, MaxAndAverageMatchLoops) {
  for (const PoolCase& pc : kPoolCases) {
    SCOPED_TRACE(case_str(pc));
    const Tensor x = testing::random_tensor(pc.shape, 1, -2.f, 2.f);
    const Shape out{pc.shape[0], pc.shape[1], out_size(pc.shape[2], pc), out_size(pc.shape[3], pc)};
    const Tensor ym = ops::max_pool2d(x, pc.kernel, pc.stride, pc.pad, pc.ceil);
    EXPECT_EQ(ym.shape(), out);
    EXPECT_EQ(ym.to_vector(), reference_pool(x, pc, PoolKind::Max));
    const Tensor ya = ops::avg_pool2d(x, pc.kernel, pc.stride, pc.pad, true, pc.ceil);
    EXPECT_EQ(ya.shape(), out);
    expect_close(reference_pool(x, pc, PoolKind::AvgIncludePad), ya.to_vector(), 1e-6, 1e-5);
    expect_close(reference_pool(x, pc, PoolKind::AvgExcludePad),
                 ops::avg_pool2d(x, pc.kernel, pc.stride, pc.pad, false, pc.ceil).to_vector(), 1e-6,
                 1e-5);
  }
}

TEST(PoolValues, CeilModeSizesArePyTorchs) {
  // {input, kernel, stride, padding, floor-mode size, ceil-mode size}, as
  // torch.nn.functional.max_pool2d gives them (PyTorch 1.13): the last two rows of the
  // first column group drop a window that would start in the right padding.
  const int64_t kSizes[][6] = {{5, 2, 2, 1, 3, 3},     {7, 3, 2, 1, 4, 4},  {6, 3, 2, 0, 2, 3},
                               {7, 2, 2, 0, 3, 4},     {8, 3, 3, 1, 3, 3},  {9, 4, 3, 2, 4, 4},
                               {10, 3, 2, 0, 4, 5},    {112, 3, 2, 0, 55, 56}, {55, 3, 2, 0, 27, 27},
                               {4, 3, 3, 1, 2, 2},     {1, 1, 2, 0, 1, 1},  {6, 4, 4, 2, 2, 2}};
  for (const auto& c : kSizes) {
    const int k = int(c[1]), s = int(c[2]), p = int(c[3]);
    SCOPED_TRACE("in " + std::to_string(c[0]) + " k" + std::to_string(k) + " s" +
                 std::to_string(s) + " p" + std::to_string(p));
    const Tensor x = Tensor::zeros({1, 1, c[0], c[0] + 1});
    for (bool ceil : {false, true}) {
      const int64_t want = ceil ? c[5] : c[4];
      const PoolCase pc{{}, k, s, p, ceil};
      EXPECT_EQ(out_size(c[0], pc), want);  // the test's own definition agrees
      EXPECT_EQ(ops::max_pool2d(x, k, s, p, ceil).dim(2), want);
      EXPECT_EQ(ops::avg_pool2d(x, k, s, p, true, ceil).dim(2), want);
    }
  }
  // A window larger than the padded input has no output, in either mode.
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({1, 1, 2, 2}), 3, 2, 0, true), ShapeError);
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({1, 1, 2, 2}), 3, 2, 0), ShapeError);
}

TEST(PoolValues, MaxPoolOfNegativeInputIgnoresPadding) {
  // Were padding 0 instead of -inf, every border window would output 0.
  const Tensor x = Tensor::full({1, 1, 3, 3}, -5.f);
  for (float v : ops::max_pool2d(x, 3, 1, 1).to_vector()) EXPECT_EQ(v, -5.f);
}

TEST(PoolValues, GlobalAveragePoolMatchesLoop) {
  const Tensor x = testing::random_tensor({3, 4, 5, 7}, 2);
  const auto v = x.to_vector();
  std::vector<float> ref;
  for (int p = 0; p < 12; ++p) {
    double s = 0.0;
    for (int i = 0; i < 35; ++i) s += v[p * 35 + i];
    ref.push_back(static_cast<float>(s / 35));
  }
  const Tensor y = ops::global_avg_pool2d(x);
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  expect_close(ref, y.to_vector(), 1e-7, 1e-6);
}

TEST(PadValues, ZeroPadMatchesLoop) {
  const Tensor x = testing::random_tensor({2, 3, 4, 5}, 3);
  const int top = 1, bottom = 2, left = 0, right = 3;
  const Tensor y = ops::zero_pad2d(x, top, bottom, left, right);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 7, 8}));
  const auto v = x.to_vector(), got = y.to_vector();
  for (int p = 0; p < 6; ++p)
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 8; ++c) {
        const int ir = r - top, ic = c - left;
        const bool inside = ir >= 0 && ir < 4 && ic >= 0 && ic < 5;
        EXPECT_EQ(got[(p * 7 + r) * 8 + c], inside ? v[(p * 4 + ir) * 5 + ic] : 0.f);
      }
  EXPECT_EQ(ops::zero_pad2d(x, 0, 0, 0, 0).to_vector(), v);
}

TEST(PoolValues, ShapeErrorsNameTheShapes) {
  try {
    ops::max_pool2d(Tensor::zeros({1, 2, 2, 2}), 3, 1);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 2, 2, 2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({2, 4, 4}), 2, 2), ShapeError);
  EXPECT_THROW(ops::max_pool2d(Tensor::zeros({1, 1, 4, 4}), 3, 1, 2), ShapeError);
  EXPECT_THROW(ops::avg_pool2d(Tensor::zeros({1, 1, 4, 4}), 2, 0), ShapeError);
  EXPECT_THROW(ops::global_avg_pool2d(Tensor::zeros({4, 4})), ShapeError);
  EXPECT_THROW(ops::zero_pad2d(Tensor::zeros({1, 1, 4, 4}), 1, -1, 0, 0), ShapeError);
  EXPECT_THROW(ops::zero_pad2d(Tensor::zeros({4, 4}), 1, 1, 1, 1), ShapeError);
}

TEST(PoolGrad, MaxPoolTiesGoToTheFirstIndex) {
  // Overlapping 3x3 windows, stride 1, over a constant plane: every window's first
  // pixel (its top-left real one) takes that window's whole gradient.
  Tensor x = Tensor::full({1, 1, 4, 4}, 1.f).set_requires_grad(true);
  ops::sum(ops::max_pool2d(x, 3, 1, 1)).backward();
  const std::vector<float> want{4, 2, 2, 0,  //
                                2, 1, 1, 0,  //
                                2, 1, 1, 0,  //
                                0, 0, 0, 0};
  EXPECT_EQ(x.grad().to_vector(), want);
}

TEST(PoolGrad, MaxPoolNaNWinsItsWindowAndTakesTheGradient) {
  // 2x2 at stride 2 (its vector fast path) and 3x3 at stride 1 (the general one).
  for (const auto& [k, s] : {std::pair<int, int>{2, 2}, {3, 1}}) {
    SCOPED_TRACE("kernel " + std::to_string(k));
    std::vector<float> v(16);
    for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(i);
    v[5] = std::nanf("");  // row 1, column 1: inside the first window of both
    Tensor x = Tensor::from_vector(v, {1, 1, 4, 4}).set_requires_grad(true);
    const Tensor y = ops::max_pool2d(x, k, s);
    EXPECT_TRUE(std::isnan(y.to_vector()[0]));
    Tensor dy = Tensor::zeros(y.shape());
    dy.data()[0] = 1.f;
    y.backward(dy);
    EXPECT_EQ(x.grad().to_vector()[5], 1.f);
  }
}

TEST(PoolGrad, MaxPoolRoutesToTheArgmax) {
  Tensor x = Tensor::from_vector({1, 5, 2, 0, 3, 4, 9, 8, 7}, {1, 1, 3, 3}).set_requires_grad(true);
  // 2x2 windows, stride 1: maxima 5, 5, 9, 8 at flat indices 1, 1, 6, 7.
  const Tensor y = ops::max_pool2d(x, 2, 1);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{5, 5, 9, 8}));
  y.backward(Tensor::from_vector({1, 10, 100, 1000}, {1, 1, 2, 2}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 11, 0, 0, 0, 0, 100, 1000, 0}));
}

// Distinct values 0.01 apart in random order. With uniform draws two values of one window
// may lie within the finite-difference step of each other; the gradient checker flags such
// kinks only when the slope is large, so max-pool checks need well-separated inputs.
Tensor distinct_leaf(const Shape& shape, uint64_t seed) {
  const int64_t n = shape_numel(shape);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>(i - n / 2);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::shuffle(v.begin(), v.end(), rng);
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

TEST(PoolGrad, PoolsAgainstFiniteDifferences) {
  for (const PoolCase& pc : kPoolCases) {
    SCOPED_TRACE(case_str(pc));
    auto x = distinct_leaf(pc.shape, 4);
    const int k = pc.kernel, s = pc.stride, p = pc.pad;
    const bool c = pc.ceil;
    EXPECT_GRADCHECK([=](const Inputs& in) { return ops::max_pool2d(in[0], k, s, p, c); }, {x});
    EXPECT_GRADCHECK([=](const Inputs& in) { return ops::avg_pool2d(in[0], k, s, p, true, c); }, {x});
    EXPECT_GRADCHECK([=](const Inputs& in) { return ops::avg_pool2d(in[0], k, s, p, false, c); }, {x});
  }
  auto x = testing::random_tensor({2, 3, 4, 5}, 5, -1.f, 1.f, true);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::global_avg_pool2d(in[0]); }, {x});
}

TEST(PadGrad, ZeroPadAgainstFiniteDifferences) {
  auto x = testing::random_tensor({2, 2, 3, 4}, 6, -1.f, 1.f, true);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::zero_pad2d(in[0], 2, 1, 3, 0); }, {x});
}

// ---- dropout ----

TEST(DropoutValues, SameSeedSameMaskAndFractionNearP) {
  const Tensor x = Tensor::ones({100000});
  for (float p : {0.1f, 0.3f, 0.5f}) {
    Generator g1(9), g2(9), g3(10);
    const auto a = ops::dropout(x, p, true, g1).to_vector();
    EXPECT_EQ(a, ops::dropout(x, p, true, g2).to_vector());
    EXPECT_NE(a, ops::dropout(x, p, true, g3).to_vector());
    int64_t dropped = 0;
    for (float v : a) {
      if (v == 0.f) {
        ++dropped;
      } else {
        // Survivors are scaled exactly by 1/(1-p).
        ASSERT_EQ(v, 1.f / (1.f - p));
      }
    }
    // 100000 draws: the standard deviation of the fraction is under 0.0016.
    EXPECT_NEAR(static_cast<double>(dropped) / 1e5, p, 0.008) << "p = " << p;
  }
}

TEST(DropoutValues, DrawsAdvanceTheGenerator) {
  const Tensor x = Tensor::ones({1000});
  Generator g(11);
  const auto a = ops::dropout(x, 0.5f, true, g).to_vector();
  EXPECT_GT(g.position(), 0u);
  // A second draw from the same generator is a fresh mask.
  EXPECT_NE(a, ops::dropout(x, 0.5f, true, g).to_vector());
}

TEST(DropoutValues, IdentityWhenNotTrainingOrPIsZero) {
  const Tensor x = testing::random_tensor({3, 7}, 12);
  Generator g(13);
  EXPECT_TRUE(ops::dropout(x, 0.5f, false, g).same(x));
  EXPECT_TRUE(ops::dropout(x, 0.f, true, g).same(x));
  EXPECT_EQ(g.position(), 0u);
  for (float v : ops::dropout(x, 1.f, true, g).to_vector()) EXPECT_EQ(v, 0.f);
  EXPECT_THROW(ops::dropout(x, 1.5f, true, g), std::invalid_argument);
  EXPECT_THROW(ops::dropout(x, -0.1f, true, g), std::invalid_argument);
  EXPECT_THROW(ops::dropout(x, NAN, true, g), std::invalid_argument);
}

TEST(DropoutGrad, FixedMaskAgainstFiniteDifferences) {
  auto x = testing::random_tensor({4, 9}, 14, -1.f, 1.f, true);
  // A fresh generator per call: every evaluation uses the same mask.
  EXPECT_GRADCHECK(
      [](const Inputs& in) {
        Generator g(15);
        return ops::dropout(in[0], 0.4f, true, g);
      },
      {x});
}

TEST(DropoutGrad, GradientIsTheForwardMaskTimesTheScale) {
  Tensor x = Tensor::ones({1001}).set_requires_grad(true);
  Generator g(16);
  const Tensor y = ops::dropout(x, 0.25f, true, g);
  ops::sum(y).backward();
  EXPECT_EQ(x.grad().to_vector(), y.to_vector());
}

// ---- CUDA parity: same op, same inputs, CPU twin as reference ----

using testing::expect_forward_backward_parity;

TEST(PoolCuda, MaxAndAveragePoolParity) {
  IPG_REQUIRE_CUDA();
  for (const PoolCase& pc : kPoolCases) {
    SCOPED_TRACE(case_str(pc));
    auto x = testing::random_tensor(pc.shape, 20, -2.f, 2.f, true);
    const int k = pc.kernel, s = pc.stride, p = pc.pad;
    const bool c = pc.ceil;
    // Max pooling selects and adds in the same order on both devices: exact.
    expect_forward_backward_parity(
        [=](const Inputs& in) { return ops::max_pool2d(in[0], k, s, p, c); }, {x}, 0, 0);
    expect_forward_backward_parity(
        [=](const Inputs& in) { return ops::avg_pool2d(in[0], k, s, p, true, c); }, {x}, 1e-6, 1e-6);
    expect_forward_backward_parity(
        [=](const Inputs& in) { return ops::avg_pool2d(in[0], k, s, p, false, c); }, {x}, 1e-6,
        1e-6);
  }
  // A ResNet-stem-sized case with ties (quantized values), through the argmax kept on the GPU.
  Tensor q = ops::mul_scalar(ops::sign(testing::random_tensor({8, 16, 56, 56}, 21)), 0.5f).detach();
  q.set_requires_grad(true);
  expect_forward_backward_parity([](const Inputs& in) { return ops::max_pool2d(in[0], 3, 2, 1); },
                                 {q}, 0, 0);
}

TEST(PoolCuda, GlobalAveragePoolAndPadParity) {
  IPG_REQUIRE_CUDA();
  for (const Shape& shape : {Shape{100, 64, 8, 8}, Shape{4, 3, 33, 35}}) {
    auto x = testing::random_tensor(shape, 22, -1.f, 1.f, true);
    expect_forward_backward_parity([](const Inputs& in) { return ops::global_avg_pool2d(in[0]); },
                                   {x}, 1e-6, 1e-6);
    expect_forward_backward_parity(
        [](const Inputs& in) { return ops::zero_pad2d(in[0], 3, 2, 1, 0); }, {x}, 0, 0);
  }
}

TEST(DropoutCuda, SameSeedSameMaskAsTheCpu) {
  IPG_REQUIRE_CUDA();
  // Odd length: the last Philox group is partial.
  auto x = testing::random_tensor({7, 1001}, 23, -1.f, 1.f, true);
  for (float p : {0.f, 0.3f, 1.f})
    expect_forward_backward_parity(
        [p](const Inputs& in) {
          Generator g(24);
          g.advance(5);  // a non-zero offset, as after earlier draws
          return ops::dropout(in[0], p, true, g);
        },
        {x}, 0, 0);
}

}  // namespace
}  // namespace ipg
