// SGD and Adam against PyTorch's update formulas written out by hand (in double) over
// several steps, state handling (parameters without a gradient, zero_grad, set_lr), a
// small model that learns, and CUDA parity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

Tensor rand_param(Shape s, uint64_t seed, Device dev = Device::cpu()) {
  Generator g(seed);
  Tensor t = Tensor::uniform(s, -1.f, 1.f, g).to(dev);
  t.set_requires_grad(true);
  return t;
}

// Gives p the gradient g (through autodiff: d/dp sum(p * g) = g).
void set_grad(Tensor& p, const Tensor& g) { ops::sum(ops::mul(p, g)).backward(); }

// The gradients of step t: fixed random tensors, so the reference sees the same ones.
std::vector<Tensor> step_grads(const Shape& s, int steps, uint64_t seed) {
  Generator g(seed);
  std::vector<Tensor> out;
  for (int t = 0; t < steps; ++t) out.push_back(Tensor::uniform(s, -2.f, 2.f, g));
  return out;
}

void expect_close(const std::vector<double>& ref, const Tensor& got, double tol) {
  const auto v = got.to_vector();
  ASSERT_EQ(v.size(), ref.size());
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_NEAR(v[i], ref[i], tol * std::max(1.0, std::fabs(ref[i]))) << "element " << i;
}

struct SgdCase {
  float lr, momentum, weight_decay;
  bool nesterov;
};

// torch.optim.SGD's step for one parameter, dampening 0.
std::vector<double> sgd_reference(std::vector<double> p, const std::vector<Tensor>& grads,
                                  const SgdCase& c) {
  std::vector<double> buf(p.size());
  for (size_t t = 0; t < grads.size(); ++t) {
    const auto g = grads[t].to_vector();
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + c.weight_decay * p[i];
      if (c.momentum != 0.f) {
        buf[i] = t == 0 ? d : c.momentum * buf[i] + d;
        d = c.nesterov ? d + c.momentum * buf[i] : buf[i];
      }
      p[i] -= c.lr * d;
    }
  }
  return p;
}

void run_sgd_case(const SgdCase& c) {
  Tensor p = rand_param({3, 4}, 1);
  const auto p0 = p.to_vector();
  const auto grads = step_grads({3, 4}, 5, 2);
  SGD opt({p}, c.lr, c.momentum, c.weight_decay, c.nesterov);
  for (const Tensor& g : grads) {
    opt.zero_grad();
    set_grad(p, g);
    opt.step();
  }
  expect_close(sgd_reference(std::vector<double>(p0.begin(), p0.end()), grads, c), p, 1e-5);
}

TEST(OptimSgd, PlainMatchesFormula) { run_sgd_case({0.1f, 0.f, 0.f, false}); }
TEST(OptimSgd, MomentumAndWeightDecayMatchFormula) { run_sgd_case({0.05f, 0.9f, 0.01f, false}); }
TEST(OptimSgd, NesterovMatchesFormula) { run_sgd_case({0.05f, 0.9f, 0.001f, true}); }

struct AdamCase {
  float lr, beta1, beta2, eps, weight_decay;
};

// torch.optim.Adam's step for one parameter (amsgrad off).
std::vector<double> adam_reference(std::vector<double> p, const std::vector<Tensor>& grads,
                                   const AdamCase& c) {
  std::vector<double> m(p.size()), v(p.size());
  for (size_t t = 1; t <= grads.size(); ++t) {
    const auto g = grads[t - 1].to_vector();
    const double bc1 = 1.0 - std::pow(c.beta1, t), bc2 = 1.0 - std::pow(c.beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      const double d = g[i] + c.weight_decay * p[i];
      m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * d;
      v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * d * d;
      p[i] -= (c.lr / bc1) * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + c.eps);
    }
  }
  return p;
}

void run_adam_case(const AdamCase& c) {
  Tensor p = rand_param({5, 3}, 3);
  const auto p0 = p.to_vector();
  const auto grads = step_grads({5, 3}, 6, 4);
  Adam opt({p}, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay);
  for (const Tensor& g : grads) {
    opt.zero_grad();
    set_grad(p, g);
    opt.step();
  }
  expect_close(adam_reference(std::vector<double>(p0.begin(), p0.end()), grads, c), p, 1e-5);
}

TEST(OptimAdam, MatchesFormulaWithBiasCorrection) {
  run_adam_case({1e-2f, 0.9f, 0.999f, 1e-8f, 0.f});
}
TEST(OptimAdam, WeightDecayAndOtherBetasMatchFormula) {
  run_adam_case({0.1f, 0.5f, 0.9f, 1e-6f, 0.05f});
}

TEST(OptimAdam, FirstStepMovesEachElementByLr) {
  // With bias correction, step 1 is lr * g / (|g| + eps): a sign step of size lr.
  Tensor p = Tensor::zeros({4});
  p.set_requires_grad(true);
  set_grad(p, Tensor::from_vector({3.f, -0.01f, 100.f, -2.f}, {4}));
  Adam opt({p}, 0.5f);
  opt.step();
  expect_close({-0.5, 0.5, -0.5, 0.5}, p, 1e-5);
}

TEST(OptimAdam, ParameterWithoutGradKeepsItsState) {
  Tensor a = rand_param({4}, 5), b = rand_param({4}, 6);
  const auto b0 = b.to_vector();
  const auto grads = step_grads({4}, 3, 7);
  const AdamCase c{1e-2f, 0.9f, 0.999f, 1e-8f, 0.f};
  Adam opt({a, b}, c.lr);
  set_grad(a, grads[0]);
  opt.step();  // b has no gradient: untouched, and its step count stays 0
  EXPECT_EQ(b.to_vector(), b0);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  set_grad(b, grads[1]);
  set_grad(a, grads[1]);
  opt.step();
  expect_close(adam_reference(std::vector<double>(b0.begin(), b0.end()), {grads[1]}, c), b, 1e-5);
}

TEST(OptimSgd, SetLrTakesEffectAndParamsWithoutGradAreSkipped) {
  Tensor p = rand_param({3}, 8), q = rand_param({3}, 9);
  const auto p0 = p.to_vector(), q0 = q.to_vector();
  SGD opt({p, q}, 1.f);
  opt.set_lr(0.25f);
  EXPECT_EQ(opt.lr(), 0.25f);
  set_grad(p, Tensor::ones({3}));
  opt.step();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(p.to_vector()[i], p0[i] - 0.25f);
  EXPECT_EQ(q.to_vector(), q0);
}

TEST(OptimSgd, RejectsBadArguments) {
  Tensor p = rand_param({2}, 10);
  EXPECT_THROW(SGD({p}, -1.f), std::invalid_argument);
  EXPECT_THROW(SGD({p}, 0.1f, 0.f, 0.f, true), std::invalid_argument);
  EXPECT_THROW(SGD({ops::mul_scalar(p, 2.f)}, 0.1f), std::invalid_argument);
  EXPECT_THROW(SGD({Tensor::from_vector_i32({1}, {1})}, 0.1f), std::invalid_argument);
  EXPECT_THROW(Adam({p}, 1e-3f, 1.f), std::invalid_argument);
  EXPECT_THROW(Adam({p}, 1e-3f, 0.9f, 0.999f, -1.f), std::invalid_argument);
  SGD ok({p}, 0.1f);
  EXPECT_THROW(ok.set_lr(-0.1f), std::invalid_argument);
}

TEST(OptimTrain, LinearModelLossFallsWithSgd) {
  // Labels from a fixed linear teacher: a linear student can fit them.
  Generator g(11);
  const int64_t n = 64, d = 4, k = 3;
  Tensor x = Tensor::uniform({n, d}, -1.f, 1.f, g);
  Tensor teacher = Tensor::uniform({k, d}, -2.f, 2.f, g);
  const auto scores = ops::linear(x, teacher).to_vector();
  std::vector<int32_t> labels(n);
  for (int64_t r = 0; r < n; ++r)
    labels[r] = static_cast<int32_t>(
        std::max_element(scores.begin() + r * k, scores.begin() + (r + 1) * k) -
        (scores.begin() + r * k));
  Tensor y = Tensor::from_vector_i32(labels, {n});
  Tensor w = Tensor::zeros({k, d}), b = Tensor::zeros({k});
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  SGD opt({w, b}, 0.5f, 0.9f);
  float first = 0.f, last = 0.f;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    Tensor loss = ops::cross_entropy(ops::linear(x, w, b), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_NEAR(first, std::log(3.0), 1e-5);  // zero weights: uniform prediction
  EXPECT_LT(last, 0.3f * first);
}

// ---- CUDA parity: the same steps on both devices ----

template <typename MakeOpt>
void expect_optimizer_parity(MakeOpt make_opt) {
  const Shape s{1000, 37};
  Tensor pc = rand_param(s, 20), pg = rand_param(s, 20, Device::cuda(0));
  auto oc = make_opt(pc);
  auto og = make_opt(pg);
  for (const Tensor& g : step_grads(s, 5, 21)) {
    oc.zero_grad();
    og.zero_grad();
    set_grad(pc, g);
    set_grad(pg, g.to(Device::cuda(0)));
    oc.step();
    og.step();
  }
  EXPECT_PARITY(pc, pg, 1e-6, 1e-5);
}

TEST(OptimCuda, SgdParity) {
  IPG_REQUIRE_CUDA();
  expect_optimizer_parity([](Tensor p) { return SGD({p}, 0.05f, 0.9f, 1e-3f, true); });
  expect_optimizer_parity([](Tensor p) { return SGD({p}, 0.05f, 0.9f, 0.f, false); });
}

TEST(OptimCuda, AdamParity) {
  IPG_REQUIRE_CUDA();
  expect_optimizer_parity([](Tensor p) { return Adam({p}, 1e-2f, 0.9f, 0.999f, 1e-8f, 1e-3f); });
}

}  // namespace
}  // namespace ipg
