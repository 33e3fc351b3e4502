// FrozenGraph layer by layer, against the same layers on the autodiff graph: blocked
// layouts (16 and 32 channels), a plain input reblocked for a conv, a value consumed
// twice (conv input and residual: its gradient is a sum), batch norm folded into a conv
// and on its own, overlapping max pooling with padding, flatten from a blocked map, and
// linear layers. Also: run-to-run identical bits, gradient buffers shared across depth,
// and the errors of a misdescribed graph.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/frozen_graph.h"
#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/view.h"
#include "engine/random.h"
#include "tests/support/batchnorm_stats.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

// Layers the tests describe twice: once to a FrozenGraph, once as autodiff ops.
struct Layers : nn::Module {
  Generator gen{3};
  nn::Conv2d& c1 = add_module("c1", std::make_shared<nn::Conv2d>(16, 32, 3, 1, 1, false, gen));
  nn::BatchNorm2d& b1 = add_module("b1", std::make_shared<nn::BatchNorm2d>(32));
  nn::Conv2d& c2 = add_module("c2", std::make_shared<nn::Conv2d>(32, 32, 3, 1, 1, true, gen));
  nn::BatchNorm2d& b2 = add_module("b2", std::make_shared<nn::BatchNorm2d>(32));
  nn::BatchNorm2d& b3 = add_module("b3", std::make_shared<nn::BatchNorm2d>(32));
  nn::Conv2d& c3 = add_module("c3", std::make_shared<nn::Conv2d>(32, 16, 3, 2, 1, true, gen));
  nn::Linear& fc = add_module("fc", std::make_shared<nn::Linear>(32, 7, true, gen));
  nn::Linear& fc_hidden =
      add_module("fc_hidden", std::make_shared<nn::Linear>(16 * 3 * 3, 20, true, gen));
  nn::Linear& fc_out = add_module("fc_out", std::make_shared<nn::Linear>(20, 5, false, gen));
  Layers() {
    testing::randomize_batch_norm(*this, 4);
    eval();
    set_requires_grad(false);
  }
};

// x [n,16,9,9] -> conv+bn+relu -> conv+bn+(residual)+relu -> maxpool 3/2 pad 1 ->
// bn+relu -> global average -> linear
Tensor eager(Layers& l, const Tensor& x) {
  const Tensor a = ops::relu(l.b1.forward(l.c1.forward(x)));
  const Tensor b = ops::relu(ops::add(l.b2.forward(l.c2.forward(a)), a));
  const Tensor c = ops::max_pool2d(b, 3, 2, 1);
  const Tensor d = ops::relu(l.b3.forward(c));
  return l.fc.forward(ops::global_avg_pool2d(d));
}

FrozenGraph::Value frozen(Layers& l, FrozenGraph& g) {
  const auto a = g.conv(g.input(), l.c1, &l.b1, true);
  const auto b = g.conv(a, l.c2, &l.b2, true, a);
  const auto c = g.max_pool(b, 3, 2, 1);
  const auto d = g.batch_norm(c, l.b3, true);
  return g.linear(g.global_avg_pool(d), l.fc, false);
}

struct Result {
  Tensor logits, grad;
};

Result run_frozen(FrozenGraph& g, const Tensor& x, const Tensor& dz) {
  Result r;
  r.logits = g.forward(x).clone();
  r.grad = g.backward(dz).clone();
  return r;
}

Result run_eager(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& dz) {
  Tensor leaf = x.clone();
  leaf.set_requires_grad(true);
  Result r;
  Tensor y = f(leaf);
  r.logits = y.detach();
  y.backward(dz);
  r.grad = leaf.grad();
  return r;
}

TEST(FrozenGraph, BlockedLayersMatchAutodiff) {
  Layers l;
  const Shape in{3, 16, 9, 9};
  FrozenGraph g(in);
  g.finish(frozen(l, g));
  EXPECT_EQ(g.shape(g.input()), in);
  Generator gen(8);
  const Tensor x = Tensor::uniform(in, -1.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({3, 7}, -1.f, 1.f, gen);
  const Result ref = run_eager([&](const Tensor& t) { return eager(l, t); }, x, dz);
  const Result got = run_frozen(g, x, dz);
  EXPECT_PARITY(ref.logits, got.logits, 1e-5, 1e-4);
  EXPECT_PARITY(ref.grad, got.grad, 1e-6, 1e-3);
  // Same buffers, same order of every sum: the same bits on the next run.
  const Result again = run_frozen(g, x, dz);
  EXPECT_EQ(got.logits.to_vector(), again.logits.to_vector());
  EXPECT_EQ(got.grad.to_vector(), again.grad.to_vector());
}

TEST(FrozenGraph, StridedConvFlattenAndLinearMatchAutodiff) {
  Layers l;
  const Shape in{2, 32, 6, 6};  // c3: 32 -> 16 channels at stride 2: blocked 3x3 maps
  FrozenGraph g(in);
  auto h = g.flatten(g.conv(g.input(), l.c3, nullptr, false));
  EXPECT_EQ(g.shape(h), (Shape{2, 144}));
  h = g.linear(h, l.fc_hidden, true);
  g.finish(g.linear(h, l.fc_out, false));
  const auto f = [&](const Tensor& x) {
    const Tensor t = ops::flatten(l.c3.forward(x));
    return l.fc_out.forward(ops::relu(l.fc_hidden.forward(t)));
  };
  Generator gen(9);
  const Tensor x = Tensor::uniform(in, -1.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({2, 5}, -1.f, 1.f, gen);
  const Result ref = run_eager(f, x, dz), got = run_frozen(g, x, dz);
  EXPECT_PARITY(ref.logits, got.logits, 1e-5, 1e-4);
  EXPECT_PARITY(ref.grad, got.grad, 1e-6, 1e-3);
}

// Average pools over windows, after a blocked conv (32 channels) and on the plain input
// (3 channels): overlapping, padded and counting the padding, ceil mode with its
// overhang, and without counting the padding; each step's values and gradients equal the
// op's (the same window sums and divisors: pool_math), the whole graph autodiff's.
TEST(FrozenGraph, AveragePoolsMatchAutodiff) {
  Generator wgen(11);
  nn::Conv2d conv(3, 32, 3, 1, 1, true, wgen);
  conv.set_requires_grad(false);
  nn::Linear fc(32, 6, true, wgen);
  fc.set_requires_grad(false);
  const Shape in{2, 3, 11, 11};
  FrozenGraph g(in);
  auto p0 = g.avg_pool(g.input(), 3, 2, 1, false, true);            // plain: 11 -> 6 (ceil)
  auto c = g.conv(p0, conv, nullptr, true);                          // blocked, 32 channels
  auto p1 = g.avg_pool(c, 3, 1, 1, true, false);                     // 6 -> 6, counts padding
  auto p2 = g.avg_pool(p1, 2, 2, 0, true, true);                     // 6 -> 3
  auto p3 = g.avg_pool(p2, 2, 2, 1, false, true);                    // 3 -> 2, the overhang
  EXPECT_EQ(g.shape(p3), (Shape{2, 32, 2, 2}));
  g.finish(g.linear(g.global_avg_pool(p3), fc, false));
  const auto f = [&](const Tensor& x) {
    Tensor t = ops::avg_pool2d(x, 3, 2, 1, false, true);
    t = ops::relu(conv.forward(t));
    t = ops::avg_pool2d(t, 3, 1, 1, true, false);
    t = ops::avg_pool2d(t, 2, 2, 0, true, true);
    t = ops::avg_pool2d(t, 2, 2, 1, false, true);
    return fc.forward(ops::global_avg_pool2d(t));
  };
  Generator gen(12);
  const Tensor x = Tensor::uniform(in, -1.f, 1.f, gen);
  const Tensor dz = Tensor::uniform({2, 6}, -1.f, 1.f, gen);
  const Result ref = run_eager(f, x, dz), got = run_frozen(g, x, dz);
  EXPECT_PARITY(ref.logits, got.logits, 1e-5, 1e-4);
  EXPECT_PARITY(ref.grad, got.grad, 1e-6, 1e-3);
}

// A chain of residual blocks: the gradient buffers are reused down the chain, so their
// total stays a few maps however deep the chain, while every layer's output is kept.
TEST(FrozenGraph, GradientBuffersDoNotGrowWithDepth) {
  Layers l;
  auto memory_of = [&](int blocks) {
    FrozenGraph g({2, 16, 9, 9});
    auto h = g.conv(g.input(), l.c1, &l.b1, true);
    for (int i = 0; i < blocks; ++i) h = g.conv(h, l.c2, &l.b2, true, h);
    g.finish(g.linear(g.global_avg_pool(h), l.fc, false));
    return g.memory();
  };
  const auto shallow = memory_of(2), deep = memory_of(12);
  const size_t map = 2 * 32 * 9 * 9 * sizeof(float), input = map / 2;
  EXPECT_GE(deep.values, shallow.values + 10 * map);
  EXPECT_EQ(deep.gradients, shallow.gradients);
  // The input's gradient, and per block: the conv's dx, the gradient at the sum (also the
  // residual's part), the next block's part: 4 maps, plus the [2, 32] features' own.
  EXPECT_LE(deep.gradients, input + 4 * map + 1024);
}

TEST(FrozenGraph, MisdescribedGraphsAreRefused) {
  Layers l;
  FrozenGraph g({2, 16, 9, 9});
  EXPECT_THROW(g.conv(g.input(), l.c2 /* 32 input channels */, nullptr, false),
               std::invalid_argument);
  const auto a = g.conv(g.input(), l.c1, nullptr, false);                   // [2, 32, 9, 9]
  const auto s = g.conv(a, l.c3, nullptr, false);                           // [2, 16, 5, 5]
  EXPECT_THROW(g.conv(a, l.c2, nullptr, false, s), std::invalid_argument);  // residual shape
  EXPECT_THROW(g.linear(a, l.fc, false), std::invalid_argument);            // a map, not features
  EXPECT_THROW(g.finish(a), std::invalid_argument);
  Generator gen(1);
  EXPECT_THROW(g.forward(Tensor::uniform({2, 16, 9, 9}, 0.f, 1.f, gen)), std::logic_error);
  FrozenGraph ok({2, 16, 9, 9});
  ok.finish(ok.linear(ok.global_avg_pool(ok.conv(ok.input(), l.c1, nullptr, true)), l.fc, false));
  EXPECT_THROW(ok.backward(Tensor::zeros({2, 7})), std::logic_error);  // before forward
  EXPECT_THROW(ok.forward(Tensor::uniform({3, 16, 9, 9}, 0.f, 1.f, gen)), std::invalid_argument);
  ok.forward(Tensor::uniform({2, 16, 9, 9}, 0.f, 1.f, gen));
  EXPECT_THROW(ok.backward(Tensor::zeros({2, 6})), std::invalid_argument);
}

}  // namespace
}  // namespace ipg
