// The two ways a backward kernel stores a gradient (engine/autograd.h, GradSink::target()):
// the first gradient of a value is written into a new, uninitialized buffer, later ones
// are added to it. A value used twice must get twice the gradient of one use, a leaf's
// gradient must add up across backward calls, and a buffer that already holds a gradient
// must keep it. The allocator's cache is filled with NaN blocks first, so a kernel that
// adds into the new buffer instead of writing it gives NaN, and one that writes over a
// held gradient gives half of what it should.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/batchnorm.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using testing::random_leaf;
using testing::random_tensor;

// f's inputs are the leaves given to it; it returns the op's output.
using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  OpFn f;
  // Whether one use stores each gradient once, so two uses give exactly g + g. Kernels
  // that add an input's gradient in several parts (a op a, the scatter convolution's
  // terms) round differently when the buffer starts from the first use's sum.
  bool exact = true;
};

std::vector<OpCase> op_cases() {
  auto bn = [](bool training) {
    return [training](const std::vector<Tensor>& in) {
      Tensor mean = Tensor::zeros({in[1].numel()}, in[0].device());
      Tensor var = Tensor::ones({in[1].numel()}, in[0].device());
      return ops::batch_norm(in[0], in[1], in[2], mean, var, training);
    };
  };
  auto conv = [](int stride) {
    return [stride](const std::vector<Tensor>& in) {
      return ops::conv2d(in[0], in[1], in[2], stride, 1);
    };
  };
  return {
      {"relu", {{2, 3, 5, 5}}, [](const std::vector<Tensor>& in) { return ops::relu(in[0]); }},
      {"add", {{2, 3, 4}, {2, 3, 4}},
       [](const std::vector<Tensor>& in) { return ops::add(in[0], in[1]); }},
      {"mul_broadcast", {{2, 3, 4}, {3, 1}},
       [](const std::vector<Tensor>& in) { return ops::mul(in[0], in[1]); }},
      {"mul_self", {{2, 3, 4}},
       [](const std::vector<Tensor>& in) { return ops::mul(in[0], in[0]); }, false},
      {"batch_norm_train", {{4, 3, 5, 5}, {3}, {3}}, bn(true)},
      {"batch_norm_eval", {{4, 3, 5, 5}, {3}, {3}}, bn(false)},
      // 20 input channels: oneDNN; 1 channel: our direct kernels (gather at stride 1,
      // scatter at stride 2).
      {"conv_onednn", {{2, 20, 6, 6}, {8, 20, 3, 3}, {8}}, conv(1)},
      {"conv_gather", {{2, 1, 9, 9}, {4, 1, 3, 3}, {4}}, conv(1)},
      {"conv_scatter", {{2, 1, 9, 9}, {4, 1, 3, 3}, {4}}, conv(2), false},
      {"linear", {{5, 7}, {3, 7}, {3}},
       [](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); }},
      {"matmul_self", {{4, 4}},
       [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[0]); }, false},
  };
}

std::vector<Tensor> leaves(const OpCase& c, Device dev) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    Tensor t = random_tensor(c.shapes[i], 100 + i).to(dev);
    t.set_requires_grad(true);
    in.push_back(t);
  }
  return in;
}

// sum(f(in) * r) over `uses` separate applications of f; the first input goes through
// x * 1 so that its gradient collects in an interior node's buffer, not only a leaf's.
void backward_uses(const OpCase& c, const std::vector<Tensor>& in, int uses, Device dev) {
  std::vector<Tensor> args = in;
  args[0] = ops::mul_scalar(in[0], 1.f);
  Tensor loss;
  for (int u = 0; u < uses; ++u) {
    Tensor y = c.f(args);
    Tensor r = random_tensor(y.shape(), 7).to(dev);
    Tensor term = ops::sum(ops::mul(y, r));
    loss = loss.defined() ? ops::add(loss, term) : term;
  }
  loss.backward();
}

// Leaves blocks of every input's size, filled with NaN, in the allocator's cache, where
// the new gradient buffers (shaped like the inputs) are taken from.
void poison_cache(const OpCase& c, Device dev) {
  std::vector<Tensor> held;
  for (const Shape& s : c.shapes)
    for (int k = 0; k < 8; ++k) held.push_back(Tensor::full(s, std::nanf(""), dev));
}

std::vector<std::vector<float>> grads(const std::vector<Tensor>& in) {
  std::vector<std::vector<float>> g;
  for (const Tensor& t : in) g.push_back(t.grad().to_vector());
  return g;
}

std::vector<std::vector<float>> doubled(std::vector<std::vector<float>> g) {
  for (auto& v : g)
    for (float& x : v) x = x + x;
  return g;
}

void expect_grads(const std::vector<std::vector<float>>& got,
                  const std::vector<std::vector<float>>& want, bool exact) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("input " + std::to_string(i));
    for (float x : got[i]) ASSERT_TRUE(std::isfinite(x)) << "a gradient read uninitialized memory";
    if (exact) {
      EXPECT_EQ(got[i], want[i]);
    } else {
      const auto r = testing::compare_values(want[i], got[i], 1e-6, 1e-5);
      EXPECT_TRUE(r.ok) << r.message;
    }
  }
}

void check_write_and_add(Device dev) {
  for (const OpCase& c : op_cases()) {
    SCOPED_TRACE(c.name);
    poison_cache(c, dev);
    const std::vector<Tensor> one = leaves(c, dev);
    backward_uses(c, one, 1, dev);
    const auto g1 = grads(one);
    expect_grads(g1, g1, true);  // finite

    // Two uses of every input: the second gradient is added to the first.
    poison_cache(c, dev);
    const std::vector<Tensor> two = leaves(c, dev);
    backward_uses(c, two, 2, dev);
    expect_grads(grads(two), doubled(g1), c.exact);

    // Two backward calls: each leaf's gradient buffer holds the first call's sum.
    poison_cache(c, dev);
    backward_uses(c, one, 1, dev);
    expect_grads(grads(one), doubled(g1), c.exact);
  }
}

TEST(GradTargets, SecondUseAddsAndFirstWrites) { check_write_and_add(Device::cpu()); }

TEST(GradTargetsCuda, SecondUseAddsAndFirstWrites) {
  IPG_REQUIRE_CUDA();
  check_write_and_add(Device::cuda());
}

// Convolution weights and bias share one accumulate flag in the kernels: a bias that
// already holds a gradient next to a weight that does not must keep its gradient, and the
// weight's must not pick up stale memory.
void check_conv_mixed(Device dev) {
  for (const int c_in : {1, 20}) {
    SCOPED_TRACE("c_in " + std::to_string(c_in));
    const Shape xs{2, c_in, 6, 6}, ws{8, c_in, 3, 3};
    Tensor x = random_leaf(xs, 1).to(dev), w = random_leaf(ws, 2).to(dev);
    Tensor b = random_leaf({8}, 3).to(dev);
    x.set_requires_grad(true), w.set_requires_grad(true), b.set_requires_grad(true);
    ops::sum(ops::conv2d(x, w, b, 1, 1)).backward();
    const std::vector<float> gw = w.grad().to_vector(), gb = b.grad().to_vector();

    poison_cache({"conv", {xs, ws, {8}}, nullptr}, dev);
    Tensor w2 = w.detach(), b2 = b.detach();
    w2.set_requires_grad(true), b2.set_requires_grad(true);
    ops::sum(ops::mul_scalar(b2, 3.f)).backward();  // b2's gradient: 3 everywhere
    ops::sum(ops::conv2d(x.detach(), w2, b2, 1, 1)).backward();
    EXPECT_EQ(w2.grad().to_vector(), gw);
    std::vector<float> want = gb;
    for (float& v : want) v = 3.f + v;
    EXPECT_EQ(b2.grad().to_vector(), want);
  }
}

TEST(GradTargets, ConvBiasKeepsItsGradientBesideANewWeightGradient) {
  check_conv_mixed(Device::cpu());
}

TEST(GradTargetsCuda, ConvBiasKeepsItsGradientBesideANewWeightGradient) {
  IPG_REQUIRE_CUDA();
  check_conv_mixed(Device::cuda());
}

}  // namespace
}  // namespace ipg
