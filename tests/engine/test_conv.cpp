// conv2d: forward and all three gradients against a plain-loop convolution written here
// (the independent reference), finite-difference gradient checks, frozen-weight
// behaviour, shape errors, and CUDA parity with the CPU twin.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/error.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/random.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;
using testing::random_leaf;
using testing::random_tensor;

struct ConvCase {
  int64_t n, c_in, h, w, c_out, kh, kw;
  int stride, padding;
  bool bias;

  int64_t h_out() const { return (h + 2 * padding - kh) / stride + 1; }
  int64_t w_out() const { return (w + 2 * padding - kw) / stride + 1; }
  Shape x_shape() const { return {n, c_in, h, w}; }
  Shape w_shape() const { return {c_out, c_in, kh, kw}; }
  Shape y_shape() const { return {n, c_out, h_out(), w_out()}; }
  std::string str() const {
    return "x " + shape_str(x_shape()) + " weight " + shape_str(w_shape()) + " stride " +
           std::to_string(stride) + " padding " + std::to_string(padding) +
           (bias ? " with bias" : " no bias");
  }
};

// Covers 1x1, strided, padded, large and non-square kernels, non-square inputs, batch 1
// and > 1, and both CPU layout paths: few input channels (plain NCHW) and many (blocked,
// including counts that are not a multiple of the 16-channel block).
const std::vector<ConvCase> kCases = {
    {2, 5, 6, 6, 4, 1, 1, 1, 0, true},      // 1x1
    {3, 8, 9, 9, 6, 3, 3, 2, 1, false},     // 3x3 stride 2
    {2, 3, 10, 10, 4, 5, 5, 1, 2, true},    // 5x5 pad 2
    {2, 3, 15, 15, 8, 7, 7, 2, 3, true},    // 7x7 stride 2 pad 3
    {2, 4, 7, 12, 5, 3, 3, 1, 1, true},     // non-square input
    {1, 2, 6, 9, 3, 3, 2, 1, 0, false},     // non-square kernel, batch 1
    {2, 20, 8, 8, 24, 3, 3, 1, 1, true},    // blocked, channels not a multiple of 16
    {4, 32, 8, 8, 16, 3, 3, 2, 1, true},    // blocked, stride 2
    {3, 1, 12, 12, 6, 5, 5, 1, 0, true},    // LeNet's first layer
    {2, 2, 1, 3, 3, 5, 5, 3, 2, false},     // padding wider than the image, stride 3
    {2, 16, 8, 8, 32, 1, 1, 2, 0, false}};  // ResNet projection shortcut

struct Reference {
  std::vector<float> y, dx, dw, db;
};

// Direct loops in double: y = conv(x, w) + b (b may be empty) and, for a given dy (may be
// empty), the three gradients.
Reference reference(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& b, const std::vector<float>& dy) {
  const int64_t ho = c.h_out(), wo = c.w_out();
  std::vector<double> y(c.n * c.c_out * ho * wo), dx(x.size()), dw(w.size()), db(c.c_out);
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t co = 0; co < c.c_out; ++co)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          const int64_t yi = ((n * c.c_out + co) * ho + oy) * wo + ox;
          double acc = b.empty() ? 0.0 : b[co];
          const double g = dy.empty() ? 0.0 : dy[yi];
          db[co] += g;
          for (int64_t ci = 0; ci < c.c_in; ++ci)
            for (int64_t ky = 0; ky < c.kh; ++ky)
              for (int64_t kx = 0; kx < c.kw; ++kx) {
                const int64_t iy = oy * c.stride - c.padding + ky;
                const int64_t ix = ox * c.stride - c.padding + kx;
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                const int64_t xi = ((n * c.c_in + ci) * c.h + iy) * c.w + ix;
                const int64_t wi = ((co * c.c_in + ci) * c.kh + ky) * c.kw + kx;
                acc += static_cast<double>(x[xi]) * w[wi];
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
          y[yi] = acc;
        }
  auto to_float = [](const std::vector<double>& v) {
    return std::vector<float>(v.begin(), v.end());
  };
  return {to_float(y), to_float(dx), to_float(dw), to_float(db)};
}

void expect_close(const std::vector<float>& ref, const Tensor& got, double atol, double rtol,
                  const std::string& what) {
  const auto r = testing::compare_values(ref, got.to_vector(), atol, rtol);
  EXPECT_TRUE(r.ok) << what << ":\n" << r.message;
}

TEST(ConvForward, MatchesLoopReference) {
  uint64_t seed = 100;
  for (const ConvCase& c : kCases) {
    const Tensor x = random_tensor(c.x_shape(), ++seed), w = random_tensor(c.w_shape(), ++seed);
    const Tensor b = c.bias ? random_tensor({c.c_out}, ++seed) : Tensor();
    const Tensor y = ops::conv2d(x, w, b, c.stride, c.padding);
    ASSERT_EQ(y.shape(), c.y_shape()) << c.str();
    const Reference ref = reference(c, x.to_vector(), w.to_vector(),
                                    c.bias ? b.to_vector() : std::vector<float>(), {});
    expect_close(ref.y, y, 1e-5, 1e-5, "forward, " + c.str());
  }
}

TEST(ConvForward, OutputShapes) {
  const Tensor x = Tensor::zeros({2, 3, 32, 32});
  EXPECT_EQ(ops::conv2d(x, Tensor::zeros({16, 3, 3, 3}), Tensor(), 1, 1).shape(),
            (Shape{2, 16, 32, 32}));
  EXPECT_EQ(ops::conv2d(x, Tensor::zeros({8, 3, 3, 3}), Tensor(), 2, 1).shape(),
            (Shape{2, 8, 16, 16}));
  EXPECT_EQ(ops::conv2d(x, Tensor::zeros({4, 3, 5, 5}), Tensor()).shape(), (Shape{2, 4, 28, 28}));
  EXPECT_EQ(ops::conv2d(x, Tensor::zeros({4, 3, 32, 32}), Tensor()).shape(), (Shape{2, 4, 1, 1}));
  EXPECT_EQ(ops::conv2d(Tensor::zeros({0, 3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor()).shape(),
            (Shape{0, 4, 6, 6}));
}

TEST(ConvBackward, AllGradientsMatchLoopReference) {
  uint64_t seed = 200;
  for (const ConvCase& c : kCases) {
    Tensor x = random_leaf(c.x_shape(), ++seed), w = random_leaf(c.w_shape(), ++seed);
    Tensor b = c.bias ? random_leaf({c.c_out}, ++seed) : Tensor();
    const Tensor dy = random_tensor(c.y_shape(), ++seed);
    ops::conv2d(x, w, b, c.stride, c.padding).backward(dy);
    const Reference ref = reference(c, x.to_vector(), w.to_vector(),
                                    c.bias ? b.to_vector() : std::vector<float>(), dy.to_vector());
    expect_close(ref.dx, x.grad(), 1e-5, 1e-5, "dx, " + c.str());
    expect_close(ref.dw, w.grad(), 1e-4, 1e-5, "dweight, " + c.str());
    if (c.bias) expect_close(ref.db, b.grad(), 1e-4, 1e-5, "dbias, " + c.str());
  }
}

// With every gradient wanted (training) both passes run as one call that converts dy to
// the kernels' layout once (kernels/cpu/conv2d.h, conv2d_backward); it must give the bits
// of each pass run alone.
TEST(ConvBackward, BothPassesAtOnceGiveTheBitsOfEachAlone) {
  uint64_t seed = 700;
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(c.str());
    const Tensor x0 = random_tensor(c.x_shape(), ++seed), w0 = random_tensor(c.w_shape(), ++seed);
    const Tensor b0 = c.bias ? random_tensor({c.c_out}, ++seed) : Tensor();
    const Tensor dy = random_tensor(c.y_shape(), ++seed);
    auto run = [&](bool want_x, bool want_w) {
      Tensor x = x0.detach(), w = w0.detach(), b = c.bias ? b0.detach() : Tensor();
      x.set_requires_grad(want_x), w.set_requires_grad(want_w);
      if (c.bias) b.set_requires_grad(want_w);
      ops::conv2d(x, w, b, c.stride, c.padding).backward(dy);
      return std::vector<Tensor>{x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()};
    };
    const auto both = run(true, true), data = run(true, false), weights = run(false, true);
    EXPECT_EQ(both[0].to_vector(), data[0].to_vector());
    EXPECT_EQ(both[1].to_vector(), weights[1].to_vector());
    if (c.bias) {
      EXPECT_EQ(both[2].to_vector(), weights[2].to_vector());
    }
  }
}

// conv2d is linear in each single element, so the central difference is exact up to
// rounding; a larger step than the default keeps the rounding small.
testing::GradCheckOptions linear_options() {
  testing::GradCheckOptions opt;
  opt.eps = 1e-2f;
  return opt;
}

TEST(ConvGrad, FiniteDifferences) {
  const std::vector<ConvCase> cases = {{2, 3, 5, 6, 4, 3, 3, 1, 1, true},
                                   {1, 2, 7, 7, 3, 5, 5, 2, 2, true},
                                   {2, 6, 5, 5, 5, 3, 3, 2, 1, true},
                                   {2, 3, 4, 4, 2, 1, 1, 1, 0, false}};
  uint64_t seed = 300;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(c.str());
    Tensor x = random_leaf(c.x_shape(), ++seed), w = random_leaf(c.w_shape(), ++seed);
    const int stride = c.stride, padding = c.padding;
    if (c.bias)
      EXPECT_GRADCHECK(
          [=](const Inputs& in) { return ops::conv2d(in[0], in[1], in[2], stride, padding); },
          {x, w, random_leaf({c.c_out}, ++seed)}, linear_options());
    else
      EXPECT_GRADCHECK(
          [=](const Inputs& in) { return ops::conv2d(in[0], in[1], Tensor(), stride, padding); },
          {x, w}, linear_options());
  }
}

TEST(ConvGrad, GradientsAccumulateOverReuse) {
  // x feeds two convolutions and w is applied twice: both gradients are sums (+=).
  Tensor x = random_leaf({2, 4, 6, 6}, 401), w1 = random_leaf({4, 4, 3, 3}, 402);
  Tensor w2 = random_leaf({4, 4, 1, 1}, 403), b = random_leaf({4}, 404);
  EXPECT_GRADCHECK(
      [](const Inputs& in) {
        const Tensor once = ops::conv2d(in[0], in[1], in[3], 1, 1);
        return ops::add(ops::conv2d(once, in[1], Tensor(), 1, 1), ops::conv2d(in[0], in[2], in[3]));
      },
      {x, w1, w2, b}, linear_options());
}

TEST(ConvGrad, FrozenWeightsGetNoGradient) {
  const ConvCase c{2, 6, 7, 7, 5, 3, 3, 1, 1, true};
  Tensor x = random_leaf(c.x_shape(), 501);
  const Tensor w = random_tensor(c.w_shape(), 502), b = random_tensor({c.c_out}, 503);
  const Tensor dy = random_tensor(c.y_shape(), 504);
  ops::conv2d(x, w, b, c.stride, c.padding).backward(dy);
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  const Reference ref = reference(c, x.to_vector(), w.to_vector(), b.to_vector(), dy.to_vector());
  expect_close(ref.dx, x.grad(), 1e-5, 1e-5, "dx with frozen weights");
}

TEST(ConvGrad, OnlyTheRequestedGradients) {
  const ConvCase c{2, 3, 6, 6, 4, 3, 3, 1, 0, true};
  const Tensor x = random_tensor(c.x_shape(), 601), w = random_tensor(c.w_shape(), 602);
  Tensor b = random_leaf({c.c_out}, 603);
  const Tensor dy = random_tensor(c.y_shape(), 604);
  // Trainable bias on frozen weights: the bias-only reduction.
  ops::conv2d(x, w, b, c.stride, c.padding).backward(dy);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
  const Reference ref = reference(c, x.to_vector(), w.to_vector(), b.to_vector(), dy.to_vector());
  expect_close(ref.db, b.grad(), 1e-5, 1e-5, "dbias alone");
  // Trainable weights on a constant input, no bias.
  Tensor w2 = random_leaf(c.w_shape(), 605);
  ops::conv2d(x, w2, Tensor(), c.stride, c.padding).backward(dy);
  EXPECT_FALSE(x.grad().defined());
  const Reference ref2 = reference(c, x.to_vector(), w2.to_vector(), {}, dy.to_vector());
  expect_close(ref2.dw, w2.grad(), 1e-4, 1e-5, "dweight alone");
}

struct BadCall {
  Shape x, weight, bias;  // bias {} = no bias
  int stride, padding;
  std::vector<std::string> message_parts;
};

TEST(ConvShape, ErrorsNameTheShapes) {
  const std::vector<BadCall> calls = {
      {{2, 3, 8, 8}, {4, 5, 3, 3}, {}, 1, 0, {"[2, 3, 8, 8]", "[4, 5, 3, 3]", "channels"}},
      {{2, 3, 8, 8}, {4, 3, 9, 9}, {}, 1, 0, {"[2, 3, 8, 8]", "[4, 3, 9, 9]", "larger"}},
      {{2, 3, 8, 8}, {4, 3, 3, 3}, {}, 0, 0, {"stride", "[2, 3, 8, 8]", "[4, 3, 3, 3]"}},
      {{2, 3, 8, 8}, {4, 3, 3, 3}, {}, -2, 0, {"stride"}},
      {{2, 3, 8, 8}, {4, 3, 3, 3}, {}, 1, -1, {"padding"}},
      {{2, 3, 8, 8}, {4, 3, 3, 3}, {5}, 1, 0, {"bias [5]", "[4, 3, 3, 3]"}},
      {{3, 8, 8}, {4, 3, 3, 3}, {}, 1, 0, {"[3, 8, 8]"}},
      {{2, 3, 8, 8}, {4, 3, 3}, {}, 1, 0, {"[4, 3, 3]"}}};
  for (const BadCall& c : calls) {
    const Tensor bias = c.bias.empty() ? Tensor() : Tensor::zeros(c.bias);
    try {
      ops::conv2d(Tensor::zeros(c.x), Tensor::zeros(c.weight), bias, c.stride, c.padding);
      ADD_FAILURE() << "expected ShapeError for input " << shape_str(c.x) << ", weight "
                    << shape_str(c.weight);
    } catch (const ShapeError& e) {
      for (const std::string& part : c.message_parts)
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  }
  // A kernel that fits only thanks to the padding is fine.
  EXPECT_EQ(
      ops::conv2d(Tensor::zeros({2, 3, 8, 8}), Tensor::zeros({4, 3, 9, 9}), Tensor(), 1, 1).shape(),
      (Shape{2, 4, 2, 2}));
}

// ---- CUDA parity: same inputs, CPU twin as the reference ----

Tensor to_cuda_leaf(const Tensor& t) {
  if (!t.defined()) return Tensor();
  Tensor g = t.detach().to(Device::cuda(0));
  if (t.requires_grad()) g.set_requires_grad(true);
  return g;
}

void expect_conv_parity(const ConvCase& c, bool x_grad, bool w_grad, uint64_t seed) {
  SCOPED_TRACE(c.str());
  Tensor x = random_tensor(c.x_shape(), seed, -1.f, 1.f, x_grad),
         w = random_tensor(c.w_shape(), seed + 1, -1.f, 1.f, w_grad);
  Tensor b = c.bias ? random_tensor({c.c_out}, seed + 2, -1.f, 1.f, w_grad) : Tensor();
  Tensor xg = to_cuda_leaf(x), wg = to_cuda_leaf(w), bg = to_cuda_leaf(b);
  const Tensor yc = ops::conv2d(x, w, b, c.stride, c.padding);
  const Tensor yg = ops::conv2d(xg, wg, bg, c.stride, c.padding);
  EXPECT_PARITY(yc, yg, 1e-4, 1e-4);
  if (!x_grad && !w_grad) return;
  const Tensor dy = random_tensor(c.y_shape(), seed + 3);
  yc.backward(dy);
  yg.backward(dy.to(Device::cuda(0)));
  if (x_grad) EXPECT_PARITY(x.grad(), xg.grad(), 1e-4, 1e-4);
  if (w_grad) {
    EXPECT_PARITY(w.grad(), wg.grad(), 1e-3, 1e-4);
    if (c.bias) EXPECT_PARITY(b.grad(), bg.grad(), 1e-3, 1e-4);
  } else {
    EXPECT_FALSE(wg.grad().defined());
  }
}

TEST(ConvCuda, ForwardAndGradientsParity) {
  IPG_REQUIRE_CUDA();
  uint64_t seed = 700;
  for (const ConvCase& c : kCases) expect_conv_parity(c, true, true, seed += 4);
  // ResNet20- and LeNet-sized layers at a realistic batch.
  for (const ConvCase& c :
       {ConvCase{16, 16, 32, 32, 16, 3, 3, 1, 1, false}, ConvCase{16, 32, 16, 16, 64, 3, 3, 2, 1, false},
        ConvCase{16, 1, 28, 28, 6, 5, 5, 1, 0, true}})
    expect_conv_parity(c, true, true, seed += 4);
}

TEST(ConvCuda, FrozenWeightsInputGradientParity) {
  IPG_REQUIRE_CUDA();
  uint64_t seed = 800;
  for (const ConvCase& c : kCases) expect_conv_parity(c, true, false, seed += 4);
  expect_conv_parity(kCases[0], false, false, seed += 4);
}

TEST(ConvCuda, SteadyStateAllocatesNothing) {
  IPG_REQUIRE_CUDA();
  const Device dev = Device::cuda(0);
  Generator g(900);
  Tensor x = Tensor::uniform({8, 16, 16, 16}, -1, 1, g, dev);
  const Tensor w = Tensor::uniform({32, 16, 3, 3}, -1, 1, g, dev);
  const Tensor dy = Tensor::uniform({8, 32, 16, 16}, -1, 1, g, dev);
  x.set_requires_grad(true);
  auto iteration = [&] {
    x.zero_grad();
    ops::conv2d(x, w, Tensor(), 1, 1).backward(dy);
  };
  iteration();
  iteration();
  const uint64_t before = CachingAllocator::for_device(dev).stats().system_allocs;
  for (int i = 0; i < 3; ++i) iteration();
  EXPECT_EQ(CachingAllocator::for_device(dev).stats().system_allocs, before);
}

}  // namespace
}  // namespace ipg
