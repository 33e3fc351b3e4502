// The fused boundary-search steps (engine/ops/boundary.h): each loss against a direct
// double-precision evaluation of its formula and its gradient against central finite
// differences; the freeze mask; the updates against the optimizer's Adam and the sign
// rule's box and ball; bad input; CUDA parity (skipped without a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/ops/boundary.h"
#include "engine/random.h"
#include "kernels/common/tanh_math.h"
#include "kernels/cpu/optimizer.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using kernels::BoundaryLoss;

// The loss of one row straight from its definition, in double.
double reference_loss(BoundaryLoss kind, const std::vector<double>& z, int i, int j, double k,
                      double w) {
  const int c = static_cast<int>(z.size());
  auto max_except = [&](int a, int b) {
    double m = -std::numeric_limits<double>::infinity();
    for (int t = 0; t < c; ++t)
      if (t != a && t != b) m = std::max(m, z[t]);
    return m;
  };
  if (kind == BoundaryLoss::CrossEntropy) {
    double s = 0;
    for (double v : z) s += std::exp(v);
    return w * (std::log(s) - z[j]);
  }
  if (kind == BoundaryLoss::CarliniWagner) return w * std::max(0.0, max_except(j, j) - z[j] + k);
  return w * (std::max(0.0, z[i] - z[j] + k) + std::max(0.0, max_except(i, j) - z[i]));
}

struct Batch {
  Tensor z, src, dst, weight;
};

Batch random_batch(int64_t n, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  Batch b;
  b.z = Tensor::uniform({n, classes}, -3.f, 3.f, gen);
  const Tensor u = Tensor::uniform({n, 2}, 0.f, 1.f, gen);
  std::vector<int32_t> s(n), d(n);
  for (int64_t r = 0; r < n; ++r) {
    s[r] = static_cast<int32_t>(u.data()[2 * r] * classes) % classes;
    d[r] = (s[r] + 1 + static_cast<int32_t>(u.data()[2 * r + 1] * (classes - 1))) % classes;
  }
  b.src = Tensor::from_vector_i32(s, {n});
  b.dst = Tensor::from_vector_i32(d, {n});
  b.weight = Tensor::uniform({n}, 0.5f, 2.f, gen);
  return b;
}

std::string kind_name(BoundaryLoss kind) {
  static const char* names[] = {"IPGuard", "CarliniWagner", "CrossEntropy"};
  return names[static_cast<int>(kind)];
}

class BoundaryLossKinds : public ::testing::TestWithParam<BoundaryLoss> {};

TEST_P(BoundaryLossKinds, ValuesAndGradientsMatchTheFormula) {
  const BoundaryLoss kind = GetParam();
  const int64_t n = 64, c = 10;
  const float k = 0.3f;
  const Batch b = random_batch(n, c, 5);
  Tensor loss, dz;
  ops::boundary_loss(kind, b.z, b.src, b.dst, k, b.weight, loss, dz, nullptr);
  ASSERT_EQ(loss.shape(), (Shape{n}));
  ASSERT_EQ(dz.shape(), (Shape{n, c}));
  int checked = 0, nonzero = 0;
  for (int64_t r = 0; r < n; ++r) {
    std::vector<double> z(b.z.data() + r * c, b.z.data() + (r + 1) * c);
    const int i = b.src.data_i32()[r], j = b.dst.data_i32()[r];
    const double w = b.weight.data()[r];
    const double want = reference_loss(kind, z, i, j, k, w);
    EXPECT_NEAR(loss.data()[r], want, 1e-5 * (1 + std::abs(want))) << "row " << r;
    nonzero += want > 0;
    // Central differences; the hinge losses are piecewise linear, so a step that does not
    // cross a kink gives the exact slope: rows with a kink within 2h are skipped.
    const double h = 1e-3;
    bool near_kink = false;
    for (int t = 0; t < c && kind != BoundaryLoss::CrossEntropy; ++t)
      for (int s = 0; s < c; ++s)
        if (s != t && std::abs(z[t] - z[s]) < 4 * h) near_kink = true;
    if (kind == BoundaryLoss::IPGuard && std::abs(z[i] - z[j] + k) < 4 * h) near_kink = true;
    if (kind == BoundaryLoss::CarliniWagner) {
      double o = -1e300;
      for (int t = 0; t < c; ++t)
        if (t != j) o = std::max(o, z[t]);
      if (std::abs(o - z[j] + k) < 4 * h) near_kink = true;
    }
    if (near_kink) continue;
    ++checked;
    for (int t = 0; t < c; ++t) {
      std::vector<double> up = z, down = z;
      up[t] += h;
      down[t] -= h;
      const double fd =
          (reference_loss(kind, up, i, j, k, w) - reference_loss(kind, down, i, j, k, w)) / (2 * h);
      EXPECT_NEAR(dz.data()[r * c + t], fd, 1e-4) << "row " << r << " class " << t;
    }
  }
  EXPECT_GT(checked, n / 2);
  EXPECT_GT(nonzero, n / 4);
}

INSTANTIATE_TEST_SUITE_P(Kinds, BoundaryLossKinds,
                         ::testing::Values(BoundaryLoss::IPGuard, BoundaryLoss::CarliniWagner,
                                           BoundaryLoss::CrossEntropy),
                         [](const auto& info) { return kind_name(info.param); });

TEST(BoundaryLoss, RowsAtZeroLossBecomeInactiveAndStaySo) {
  // Row 0: z_j = 3 > z_i + k = 2.5 and z_i = 2 above the rest: goal reached, loss 0.
  // Row 1: z_i above z_j: loss > 0. Row 2: loss > 0 but already inactive.
  const Tensor z = Tensor::from_vector({2, 3, 0, 4, 1, 0, 0, 0, 5}, {3, 3});
  const Tensor src = Tensor::from_vector_i32({0, 0, 0}, {3});
  const Tensor dst = Tensor::from_vector_i32({1, 1, 1}, {3});
  Tensor active = Tensor::from_vector_i32({1, 1, 0}, {3}), loss, dz;
  ops::boundary_loss(BoundaryLoss::IPGuard, z, src, dst, 0.5f, Tensor(), loss, dz, &active);
  EXPECT_EQ(loss.data()[0], 0.f);
  EXPECT_GT(loss.data()[1], 0.f);
  EXPECT_GT(loss.data()[2], 0.f);
  EXPECT_EQ(active.to_vector_i32(), (std::vector<int32_t>{0, 1, 0}));
  for (int t = 0; t < 3; ++t) EXPECT_EQ(dz.data()[t], 0.f);  // nothing left to push
}

TEST(BoundaryLoss, TwoClassesHaveOnlyTheMarginTerm) {
  const Tensor z = Tensor::from_vector({1.f, 0.5f}, {1, 2});
  Tensor loss, dz;
  ops::boundary_loss(BoundaryLoss::IPGuard, z, Tensor::from_vector_i32({0}, {1}),
                     Tensor::from_vector_i32({1}, {1}), 0.25f, Tensor(), loss, dz, nullptr);
  EXPECT_FLOAT_EQ(loss.data()[0], 0.75f);
  EXPECT_EQ(dz.to_vector(), (std::vector<float>{1.f, -1.f}));
}

TEST(BoundaryLoss, BadInputIsRefused) {
  const Batch b = random_batch(4, 5, 1);
  Tensor loss, dz;
  const Tensor bad_label = Tensor::from_vector_i32({0, 1, 5, 2}, {4});
  EXPECT_THROW(ops::boundary_loss(BoundaryLoss::CarliniWagner, b.z, b.src, bad_label, 0, Tensor(),
                                  loss, dz, nullptr),
               std::invalid_argument);
  EXPECT_THROW(
      ops::boundary_loss(BoundaryLoss::IPGuard, b.z, b.src, b.src, 0, Tensor(), loss, dz, nullptr),
      std::invalid_argument);
  EXPECT_THROW(ops::boundary_loss(BoundaryLoss::IPGuard, b.z, b.src,
                                  Tensor::zeros({3}, Device::cpu(), DType::I32), 0, Tensor(), loss,
                                  dz, nullptr),
               ShapeError);
  EXPECT_THROW(ops::boundary_loss(BoundaryLoss::IPGuard, Tensor::zeros({4, 1}), b.src, b.dst, 0,
                                  Tensor(), loss, dz, nullptr),
               ShapeError);
}

// A margin per row (several settings in one batch) gives each row what a batch with that
// margin for every row gives it, bit for bit, loss, gradient and freeze alike.
TEST(BoundaryLoss, PerRowMarginIsEachRowsOwnScalarMargin) {
  const Batch b = random_batch(12, 7, 11);
  const std::vector<float> ks = {0.f, 0.5f, 3.f, 10.f};
  std::vector<float> k_rows(12);
  for (size_t r = 0; r < k_rows.size(); ++r) k_rows[r] = ks[r % ks.size()];
  for (BoundaryLoss kind : {BoundaryLoss::IPGuard, BoundaryLoss::CarliniWagner}) {
    Tensor active = Tensor::from_vector_i32(std::vector<int32_t>(12, 1), {12}), loss, dz;
    ops::boundary_loss(kind, b.z, b.src, b.dst, Tensor::from_vector(k_rows, {12}), b.weight, loss,
                       dz, &active);
    for (float k : ks) {
      Tensor a1 = Tensor::from_vector_i32(std::vector<int32_t>(12, 1), {12}), l1, d1;
      ops::boundary_loss(kind, b.z, b.src, b.dst, k, b.weight, l1, d1, &a1);
      for (int64_t r = 0; r < 12; ++r) {
        if (k_rows[r] != k) continue;
        EXPECT_EQ(loss.data()[r], l1.data()[r]) << kind_name(kind) << " row " << r;
        EXPECT_EQ(active.data_i32()[r], a1.data_i32()[r]);
        for (int64_t c = 0; c < 7; ++c) EXPECT_EQ(dz.data()[r * 7 + c], d1.data()[r * 7 + c]);
      }
    }
  }
  Tensor loss, dz;
  EXPECT_THROW(ops::boundary_loss(BoundaryLoss::IPGuard, b.z, b.src, b.dst, Tensor::zeros({11}),
                                  Tensor(), loss, dz, nullptr),
               ShapeError);
  EXPECT_THROW(ops::boundary_loss(BoundaryLoss::IPGuard, b.z, b.src, b.dst, Tensor(), Tensor(),
                                  loss, dz, nullptr),
               ShapeError);
}

TEST(BoundaryUpdate, AdamStepIsTheOptimizersClippedAndSkipsInactiveRows) {
  Generator gen(3);
  const Shape s{3, 2, 4, 4};
  Tensor x = Tensor::uniform(s, 0.f, 1.f, gen), g = Tensor::uniform(s, -1.f, 1.f, gen);
  Tensor m = Tensor::uniform(s, -0.1f, 0.1f, gen), v = Tensor::uniform(s, 0.f, 0.1f, gen);
  const Tensor active = Tensor::from_vector_i32({1, 0, 1}, {3});
  const kernels::AdamCoeffs c = kernels::adam_coeffs(0.2f, 0.9f, 0.999f, 1e-8f, 0.f, 3);
  Tensor rx = x.clone(), rm = m.clone(), rv = v.clone();
  const Tensor x_before = x.clone(), m_before = m.clone(), v_before = v.clone();
  kernels::cpu::adam_update(rx.data(), g.data(), rm.data(), rv.data(), rx.numel(), c);
  ops::boundary_adam_step(x, g, m, v, active, c, 0.f, 1.f);
  const int64_t row = x.numel() / 3;
  int clipped = 0;
  for (int64_t e = 0; e < x.numel(); ++e) {
    if (e / row == 1) {
      EXPECT_EQ(x.data()[e], x_before.data()[e]);
      EXPECT_EQ(m.data()[e], m_before.data()[e]);
      EXPECT_EQ(v.data()[e], v_before.data()[e]);
      continue;
    }
    EXPECT_EQ(x.data()[e], std::min(1.f, std::max(0.f, rx.data()[e])));
    EXPECT_EQ(m.data()[e], rm.data()[e]);
    EXPECT_EQ(v.data()[e], rv.data()[e]);
    clipped += rx.data()[e] < 0.f || rx.data()[e] > 1.f;
  }
  EXPECT_GT(clipped, 0);  // the box was exercised
}

// The table-driven step (what a replayed stretch runs) is the by-value step of the
// iteration its counter names, and the counter moves on by one per advance.
TEST(BoundaryUpdate, AdamStepAtReadsTheIterationsCoefficientsFromTheTable) {
  Generator gen(13);
  const Shape s{3, 1, 5, 5};
  const Tensor g = Tensor::uniform(s, -1.f, 1.f, gen), x0 = Tensor::uniform(s, 0.f, 1.f, gen);
  const Tensor active = Tensor::from_vector_i32({1, 1, 0}, {3});
  Tensor xa = x0.clone(), ma = Tensor::zeros(s), va = Tensor::zeros(s);
  Tensor xb = x0.clone(), mb = Tensor::zeros(s), vb = Tensor::zeros(s);
  const Tensor table = ops::adam_table(0.05f, 0.9f, 0.999f, 1e-8f, 0.f, 1, 6, Device::cpu());
  ASSERT_EQ(table.shape(), (Shape{6, 6}));
  Tensor step = Tensor::from_vector_i32({0}, {1});
  for (int64_t t = 1; t <= 6; ++t) {
    ops::boundary_adam_step(xa, g, ma, va, active,
                            kernels::adam_coeffs(0.05f, 0.9f, 0.999f, 1e-8f, 0.f, t), 0.f, 1.f);
    ops::boundary_adam_step_at(xb, g, mb, vb, active, table, step, 0.f, 1.f);
    ops::boundary_step_advance(step);
    ASSERT_EQ(step.to_vector_i32()[0], t);
  }
  EXPECT_EQ(xa.to_vector(), xb.to_vector());
  EXPECT_EQ(ma.to_vector(), mb.to_vector());
  // Not the same as always using the first iteration's coefficients: the table matters.
  Tensor xc = x0.clone(), mc = Tensor::zeros(s), vc = Tensor::zeros(s);
  Tensor first = Tensor::from_vector_i32({0}, {1});
  for (int t = 0; t < 6; ++t) ops::boundary_adam_step_at(xc, g, mc, vc, active, table, first, 0.f, 1.f);
  EXPECT_NE(xa.to_vector(), xc.to_vector());
  Tensor bad_table = Tensor::zeros({6, 5});
  EXPECT_THROW(ops::boundary_adam_step_at(xb, g, mb, vb, active, bad_table, step, 0.f, 1.f),
               ShapeError);
}

TEST(BoundaryUpdate, SignStepsStayInTheBoxAndWithinEpsOfTheStart) {
  Generator gen(4);
  const Shape s{2, 1, 6, 6};
  const Tensor x0 = Tensor::uniform(s, 0.f, 1.f, gen), g = Tensor::uniform(s, -1.f, 1.f, gen);
  Tensor x = x0.clone();
  const float alpha = 1.f / 255, eps = 8.f / 255;
  ops::boundary_sign_step(x, x0, g, Tensor(), alpha, eps, 0.f, 1.f);
  for (int64_t e = 0; e < x.numel(); ++e) {
    const float want = x0.data()[e] - alpha * (g.data()[e] > 0 ? 1.f : -1.f);
    EXPECT_EQ(x.data()[e], std::min(1.f, std::max(0.f, want)));
  }
  for (int it = 0; it < 20; ++it) ops::boundary_sign_step(x, x0, g, Tensor(), alpha, eps, 0.f, 1.f);
  for (int64_t e = 0; e < x.numel(); ++e) {
    EXPECT_LE(std::abs(x.data()[e] - x0.data()[e]), eps + 1e-6f);
    EXPECT_GE(x.data()[e], 0.f);
    EXPECT_LE(x.data()[e], 1.f);
  }
}

TEST(BoundaryCuda, LossAndUpdatesMatchTheCpu) {
  IPG_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (BoundaryLoss kind :
       {BoundaryLoss::IPGuard, BoundaryLoss::CarliniWagner, BoundaryLoss::CrossEntropy}) {
    const Batch b = random_batch(100, 1000, 6);
    Tensor act_cpu = Tensor::from_vector_i32(std::vector<int32_t>(100, 1), {100});
    Tensor act_gpu = act_cpu.to(gpu);
    Tensor l_cpu, d_cpu, l_gpu, d_gpu;
    ops::boundary_loss(kind, b.z, b.src, b.dst, 0.2f, b.weight, l_cpu, d_cpu, &act_cpu);
    ops::boundary_loss(kind, b.z.to(gpu), b.src.to(gpu), b.dst.to(gpu), 0.2f, b.weight.to(gpu),
                       l_gpu, d_gpu, &act_gpu);
    EXPECT_PARITY(l_cpu, l_gpu, 1e-5, 1e-5);
    EXPECT_PARITY(d_cpu, d_gpu, 1e-6, 1e-5);
    EXPECT_EQ(act_cpu.to_vector_i32(), act_gpu.cpu().to_vector_i32());
    // A margin per row.
    Generator kg(8);
    const Tensor k_rows = Tensor::uniform({100}, 0.f, 20.f, kg);
    ops::boundary_loss(kind, b.z, b.src, b.dst, k_rows, b.weight, l_cpu, d_cpu, nullptr);
    ops::boundary_loss(kind, b.z.to(gpu), b.src.to(gpu), b.dst.to(gpu), k_rows.to(gpu),
                       b.weight.to(gpu), l_gpu, d_gpu, nullptr);
    EXPECT_PARITY(l_cpu, l_gpu, 1e-5, 1e-5);
    EXPECT_PARITY(d_cpu, d_gpu, 1e-6, 1e-5);
  }
  Generator gen(7);
  const Shape s{4, 3, 8, 8};
  const Tensor g = Tensor::uniform(s, -1.f, 1.f, gen), x0 = Tensor::uniform(s, 0.f, 1.f, gen);
  const Tensor active = Tensor::from_vector_i32({1, 0, 1, 1}, {4});
  Tensor xc = x0.clone(), mc = Tensor::zeros(s), vc = Tensor::zeros(s);
  Tensor xg = x0.to(gpu), mg = Tensor::zeros(s, gpu), vg = Tensor::zeros(s, gpu);
  for (int64_t t = 1; t <= 3; ++t) {
    const auto c = kernels::adam_coeffs(0.05f, 0.9f, 0.999f, 1e-8f, 0.f, t);
    ops::boundary_adam_step(xc, g, mc, vc, active, c, 0.f, 1.f);
    ops::boundary_adam_step(xg, g.to(gpu), mg, vg, active.to(gpu), c, 0.f, 1.f);
  }
  EXPECT_PARITY(xc, xg, 1e-6, 1e-5);
  {  // the table-driven step and the counter on the device
    Tensor xt = x0.to(gpu), mt = Tensor::zeros(s, gpu), vt = Tensor::zeros(s, gpu);
    const Tensor table = ops::adam_table(0.05f, 0.9f, 0.999f, 1e-8f, 0.f, 1, 3, gpu);
    Tensor step = Tensor::from_vector_i32({0}, {1}, gpu);
    for (int t = 0; t < 3; ++t) {
      ops::boundary_adam_step_at(xt, g.to(gpu), mt, vt, active.to(gpu), table, step, 0.f, 1.f);
      ops::boundary_step_advance(step);
    }
    EXPECT_EQ(step.cpu().to_vector_i32()[0], 3);
    EXPECT_PARITY(xg, xt, 0, 0);
  }
  Tensor sc = x0.clone(), sg = x0.to(gpu);
  ops::boundary_sign_step(sc, x0, g, active, 0.01f, 0.03f, 0.f, 1.f);
  ops::boundary_sign_step(sg, x0.to(gpu), g.to(gpu), active.to(gpu), 0.01f, 0.03f, 0.f, 1.f);
  EXPECT_PARITY(sc, sg, 0, 0);
}

}  // namespace
}  // namespace ipg

namespace ipg {
namespace {

TEST(BoundaryCw, StepGradientIsTheDerivativeThroughTanh) {
  // L(u) = (x(u) - x0s)^2 + g * x(u) with x(u) = tanh(u)/2 + 1/2: the term whose gradient
  // at the pixel is g, plus CW-L2's distance.
  Generator gen(8);
  const Tensor r = Tensor::uniform({3, 50}, -1.f, 1.f, gen);
  for (int i = 0; i < 50; ++i) {
    const double u = 2.0 * r.data()[i], x0s = 0.5 + 0.5 * r.data()[50 + i], g = r.data()[100 + i];
    auto loss = [&](double w) {
      const double x = 0.5 * std::tanh(w) + 0.5;
      return (x - x0s) * (x - x0s) + g * x;
    };
    const double h = 1e-4, fd = (loss(u + h) - loss(u - h)) / (2 * h);
    EXPECT_NEAR(kernels::boundary_cw_grad(static_cast<float>(u), static_cast<float>(x0s),
                                          static_cast<float>(g)),
                fd, 1e-4);
  }
}

TEST(BoundaryCw, TrackKeepsTheClosestSuccess) {
  // Two rows of 3 pixels, 3 classes, target 2, kappa 0.5.
  const Tensor x0s = Tensor::from_vector({0, 0, 0, 1, 1, 1}, {2, 3});
  Tensor best_x = x0s.clone(), best_l2 = Tensor::full({2}, 1e10f), l2, success;
  const Tensor dst = Tensor::from_vector_i32({2, 2}, {2});
  // Row 0 succeeds (2 - 0.5 > 1), row 1 does not (a tie after kappa goes to the first).
  const Tensor x1 = Tensor::from_vector({1, 0, 0, 1, 1, 0}, {2, 3});
  const Tensor z1 = Tensor::from_vector({0, 1, 2, 0, 1.5f, 2}, {2, 3});
  ops::boundary_cw_track(x1, x0s, z1, dst, 0.5f, l2, success, best_l2, best_x);
  EXPECT_EQ(l2.to_vector(), (std::vector<float>{1, 1}));
  EXPECT_EQ(success.to_vector_i32(), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(best_l2.to_vector(), (std::vector<float>{1, 1e10f}));
  EXPECT_EQ(best_x.to_vector(), (std::vector<float>{1, 0, 0, 1, 1, 1}));
  // A farther success does not replace a closer one; a closer one does.
  const Tensor x2 = Tensor::from_vector({1, 1, 0, 0.5f, 1, 1}, {2, 3});
  const Tensor z2 = Tensor::from_vector({0, 1, 2, 0, 1, 2}, {2, 3});
  ops::boundary_cw_track(x2, x0s, z2, dst, 0.5f, l2, success, best_l2, best_x);
  EXPECT_EQ(best_l2.to_vector(), (std::vector<float>{1, 0.25f}));
  EXPECT_EQ(best_x.to_vector(), (std::vector<float>{1, 0, 0, 0.5f, 1, 1}));
}

// A confidence per row gives each row what the one-kappa track gives it with that kappa,
// and a row's kappa decides its success (the same logits succeed at 0.4, fail at 0.6).
TEST(BoundaryCw, TrackWithAConfidencePerRowIsEachRowsOwn) {
  Generator gen(31);
  const Shape s{4, 2, 3, 3};
  const Tensor x0s = Tensor::uniform(s, 0.f, 1.f, gen), x = Tensor::uniform(s, 0.f, 1.f, gen);
  // Target 1 leads the next logit by 0.5 in every row.
  const Tensor z = Tensor::from_vector({0, 1.5f, 1, 0, 1.5f, 1, 0, 1.5f, 1, 0, 1.5f, 1}, {4, 3});
  const Tensor dst = Tensor::from_vector_i32({1, 1, 1, 1}, {4});
  const std::vector<float> kappa = {0.f, 0.4f, 0.6f, 2.f};
  Tensor l2, success, best = Tensor::full({4}, 1e10f), best_x = x0s.clone();
  ops::boundary_cw_track(x, x0s, z, dst, Tensor::from_vector(kappa, {4}), l2, success, best,
                         best_x);
  EXPECT_EQ(success.to_vector_i32(), (std::vector<int32_t>{1, 1, 0, 0}));
  const int64_t per = shape_numel(s) / 4;
  for (int64_t r = 0; r < 4; ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    Tensor l2r, sr, br = Tensor::full({4}, 1e10f), bxr = x0s.clone();
    ops::boundary_cw_track(x, x0s, z, dst, kappa[static_cast<size_t>(r)], l2r, sr, br, bxr);
    EXPECT_EQ(sr.to_vector_i32()[r], success.to_vector_i32()[r]);
    EXPECT_EQ(br.to_vector()[r], best.to_vector()[r]);
    EXPECT_EQ(l2r.to_vector()[r], l2.to_vector()[r]);
    for (int64_t e = r * per; e < (r + 1) * per; ++e) EXPECT_EQ(bxr.data()[e], best_x.data()[e]);
  }
  Tensor none;
  EXPECT_THROW(ops::boundary_cw_track(x, x0s, z, dst, none, l2, success, best, best_x), ShapeError);
  const Tensor three = Tensor::zeros({3});
  EXPECT_THROW(ops::boundary_cw_track(x, x0s, z, dst, three, l2, success, best, best_x),
               ShapeError);
}

// tanh of every element (on the host): the t that CW-L2's step keeps beside u.
Tensor tanh_of(const Tensor& u) {
  Tensor t = u.cpu().clone();
  for (int64_t e = 0; e < t.numel(); ++e) t.data()[e] = kernels::tanhf_hd(t.data()[e]);
  return t.to(u.device());
}

// The step keeps t = tanh(u) instead of computing tanh(u) again for the gradient: u, x and
// the moments are, bit for bit, those of the step from u alone (the gradient through
// tanh(u), then the pixel of the new u), and t stays tanh(u) exactly.
TEST(BoundaryCw, StepKeepingTanhGivesTheBitsOfTheStepFromUAlone) {
  Generator gen(23);
  const Shape s{3, 1, 7, 7};
  const Tensor u0 = Tensor::uniform(s, -3.f, 3.f, gen), x0s = Tensor::uniform(s, 0.f, 1.f, gen);
  const Tensor g = Tensor::uniform(s, -1.f, 1.f, gen);
  Tensor u = u0.clone(), t = tanh_of(u0), x = Tensor::empty(s), m = Tensor::zeros(s),
         v = Tensor::zeros(s);
  std::vector<float> ur = u0.to_vector(), xr(ur.size()), mr(ur.size()), vr(ur.size());
  for (int64_t it = 1; it <= 6; ++it) {
    const auto c = kernels::adam_coeffs(0.05f, 0.9f, 0.999f, 1e-8f, 0.f, it);
    ops::boundary_cw_step(u, t, x, x0s, g, m, v, c);
    for (size_t e = 0; e < ur.size(); ++e) {
      const float grad = kernels::boundary_cw_grad(ur[e], x0s.data()[e], g.data()[e]);
      ur[e] = kernels::adam_element(ur[e], grad, &mr[e], &vr[e], c);
      xr[e] = kernels::boundary_cw_pixel(ur[e]);
    }
  }
  EXPECT_EQ(u.to_vector(), ur);
  EXPECT_EQ(x.to_vector(), xr);
  EXPECT_EQ(m.to_vector(), mr);
  EXPECT_EQ(v.to_vector(), vr);
  EXPECT_EQ(t.to_vector(), tanh_of(u).to_vector());
  EXPECT_NE(u.to_vector(), u0.to_vector());
}

// CW-L2's table-driven step (a replayed stretch) is the by-value step of the iteration
// its counter names.
TEST(BoundaryCw, StepAtReadsTheIterationsCoefficientsFromTheTable) {
  Generator gen(21);
  const Shape s{3, 1, 5, 5};
  const Tensor u0 = Tensor::uniform(s, -2.f, 2.f, gen), x0s = Tensor::uniform(s, 0.f, 1.f, gen);
  const Tensor g = Tensor::uniform(s, -1.f, 1.f, gen);
  Tensor ua = u0.clone(), xa = Tensor::empty(s), ma = Tensor::zeros(s), va = Tensor::zeros(s);
  Tensor ub = u0.clone(), xb = Tensor::empty(s), mb = Tensor::zeros(s), vb = Tensor::zeros(s);
  Tensor ta = tanh_of(u0), tb = tanh_of(u0);
  const Tensor table = ops::adam_table(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, 1, 5, Device::cpu());
  Tensor step = Tensor::from_vector_i32({0}, {1});
  for (int64_t t = 1; t <= 5; ++t) {
    ops::boundary_cw_step(ua, ta, xa, x0s, g, ma, va,
                          kernels::adam_coeffs(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, t));
    ops::boundary_cw_step_at(ub, tb, xb, x0s, g, mb, vb, table, step);
    ops::boundary_step_advance(step);
  }
  EXPECT_EQ(ua.to_vector(), ub.to_vector());
  EXPECT_EQ(xa.to_vector(), xb.to_vector());
  EXPECT_EQ(va.to_vector(), vb.to_vector());
  // The first iteration's coefficients every time give other values: the table matters.
  Tensor uc = u0.clone(), tc = tanh_of(u0), xc = Tensor::empty(s), mc = Tensor::zeros(s),
         vc = Tensor::zeros(s);
  const Tensor first = Tensor::from_vector_i32({0}, {1});
  for (int t = 0; t < 5; ++t) ops::boundary_cw_step_at(uc, tc, xc, x0s, g, mc, vc, table, first);
  EXPECT_NE(ua.to_vector(), uc.to_vector());
  EXPECT_THROW(ops::boundary_cw_step_at(ub, tb, xb, x0s, g, mb, vb, Tensor::zeros({5, 5}), step),
               ShapeError);
  EXPECT_THROW(ops::boundary_cw_step_at(ub, tb, xb, x0s, g, mb, vb, table, Tensor::zeros({1})),
               std::invalid_argument);
  Tensor short_t = Tensor::zeros({3, 1, 5, 4});
  EXPECT_THROW(ops::boundary_cw_step_at(ub, short_t, xb, x0s, g, mb, vb, table, step), ShapeError);
  // Buffers that share memory are refused (the CPU kernel is compiled on the promise that
  // they do not), written with written and written with read; the two read-only ones may.
  const auto c1 = kernels::adam_coeffs(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, 1);
  EXPECT_THROW(ops::boundary_cw_step(ub, ub, xb, x0s, g, mb, vb, c1), ShapeError);
  EXPECT_THROW(ops::boundary_cw_step(ub, tb, xb, xb, g, mb, vb, c1), ShapeError);
  EXPECT_THROW(ops::boundary_cw_step_at(ub, tb, xb, x0s, g, mb, mb, table, step), ShapeError);
  EXPECT_NO_THROW(ops::boundary_cw_step(ub, tb, xb, g, g, mb, vb, c1));
}

TEST(BoundaryCwCuda, StepAtMatchesTheCpu) {
  IPG_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  Generator gen(22);
  const Shape s{4, 3, 8, 8};
  const Tensor u0 = Tensor::uniform(s, -2.f, 2.f, gen), x0s = Tensor::uniform(s, 0.f, 1.f, gen);
  const Tensor g = Tensor::uniform(s, -1.f, 1.f, gen);
  Tensor uc = u0.clone(), xc = Tensor::empty(s), mc = Tensor::zeros(s), vc = Tensor::zeros(s);
  Tensor ug = u0.to(gpu), xg = Tensor::empty(s, gpu), mg = Tensor::zeros(s, gpu),
         vg = Tensor::zeros(s, gpu);
  Tensor thc = tanh_of(u0), thg = thc.to(gpu);
  const Tensor table = ops::adam_table(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, 1, 3, Device::cpu());
  Tensor sc = Tensor::from_vector_i32({0}, {1}), sg = sc.to(gpu);
  const Tensor tg = table.to(gpu);
  for (int t = 0; t < 3; ++t) {
    ops::boundary_cw_step_at(uc, thc, xc, x0s, g, mc, vc, table, sc);
    ops::boundary_step_advance(sc);
    ops::boundary_cw_step_at(ug, thg, xg, x0s.to(gpu), g.to(gpu), mg, vg, tg, sg);
    ops::boundary_step_advance(sg);
  }
  EXPECT_PARITY(uc, ug, 1e-6, 1e-5);
  EXPECT_PARITY(xc, xg, 1e-6, 1e-5);
  EXPECT_EQ(sg.cpu().to_vector_i32()[0], 3);
}

TEST(BoundaryCwCuda, StepAndTrackMatchTheCpu) {
  IPG_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  Generator gen(9);
  const Shape s{5, 3, 8, 8};
  const Tensor u0 = Tensor::uniform(s, -2.f, 2.f, gen), x0s = Tensor::uniform(s, 0.f, 1.f, gen);
  const Tensor g = Tensor::uniform(s, -1.f, 1.f, gen), z = Tensor::uniform({5, 10}, -1.f, 1.f, gen);
  const Tensor dst = Tensor::from_vector_i32({0, 3, 5, 7, 9}, {5});
  Tensor uc = u0.clone(), xc = Tensor::empty(s), mc = Tensor::zeros(s), vc = Tensor::zeros(s);
  Tensor ug = u0.to(gpu), xg = Tensor::empty(s, gpu), mg = Tensor::zeros(s, gpu),
         vg = Tensor::zeros(s, gpu);
  const auto c = kernels::adam_coeffs(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, 1);
  Tensor thc = tanh_of(u0), thg = thc.to(gpu);
  ops::boundary_cw_step(uc, thc, xc, x0s, g, mc, vc, c);
  ops::boundary_cw_step(ug, thg, xg, x0s.to(gpu), g.to(gpu), mg, vg, c);
  EXPECT_PARITY(thc, thg, 1e-6, 1e-5);
  EXPECT_PARITY(uc, ug, 1e-6, 1e-5);
  EXPECT_PARITY(xc, xg, 1e-6, 1e-5);
  Tensor l2c, sc, l2g, sg, bc = Tensor::full({5}, 1e10f), bg = bc.to(gpu);
  Tensor bxc = x0s.clone(), bxg = x0s.to(gpu);
  ops::boundary_cw_track(xc, x0s, z, dst, 0.f, l2c, sc, bc, bxc);
  ops::boundary_cw_track(xc.to(gpu), x0s.to(gpu), z.to(gpu), dst.to(gpu), 0.f, l2g, sg, bg, bxg);
  EXPECT_PARITY(l2c, l2g, 0, 0);  // the same summation order
  EXPECT_EQ(sc.to_vector_i32(), sg.cpu().to_vector_i32());
  EXPECT_PARITY(bxc, bxg, 0, 0);
  // A confidence per row (settings sharing the batch): the success flags follow it on both.
  const Tensor kappa = Tensor::from_vector({0.f, 0.3f, 0.6f, 1.f, 2.f}, {5});
  Tensor bkc = Tensor::full({5}, 1e10f), bkg = bkc.to(gpu), bxkc = x0s.clone(), bxkg = x0s.to(gpu);
  ops::boundary_cw_track(xc, x0s, z, dst, kappa, l2c, sc, bkc, bxkc);
  ops::boundary_cw_track(xc.to(gpu), x0s.to(gpu), z.to(gpu), dst.to(gpu), kappa.to(gpu), l2g, sg,
                         bkg, bxkg);
  EXPECT_EQ(sc.to_vector_i32(), sg.cpu().to_vector_i32());
  EXPECT_PARITY(bkc, bkg, 0, 0);
  EXPECT_PARITY(bxkc, bxkg, 0, 0);
}

}  // namespace
}  // namespace ipg
