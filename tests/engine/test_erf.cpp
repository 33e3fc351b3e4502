// erff_hd and erff_hd_derivative (kernels/common/erf_math.h), the engine's erf op (ONNX Erf,
// GELU) on both devices: their error against the exact functions over a dense sweep of
// floats, erf's shape (odd, bounded, exactly 1 where erf rounds to 1, no jump at the branch
// switch), the special values, the CPU op's vector loop and its backward giving the scalar
// formulas' bits, and CUDA the CPU's bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "kernels/common/erf_math.h"
#include "tests/support/float_bits.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using kernels::erff_hd;
using kernels::erff_hd_derivative;
using testing::bits_of;
using testing::float_of;
using testing::float_sweep;
using testing::mixed_float_inputs;
using testing::ulp_distance;

// Over every non-negative float the largest error is 1.351 ulp (at 1.0593, just above the
// switch to the exponential branch); glibc's erff reaches 0.90. A wrong coefficient or a
// lost rounding step shows up as several ulp.
TEST(ErfHd, WithinOnePointThreeSixUlpOfTheExactErf) {
  double worst = 0.0;
  float at = 0.f;
  for (const float x : float_sweep(193)) {
    const double e = ulp_distance(std::erf(static_cast<double>(x)), erff_hd(x));
    if (e > worst) worst = e, at = x;
  }
  EXPECT_LE(worst, 1.36) << "at x = " << at;
  // Around the branch switch, where the worst errors lie, every float.
  for (uint32_t b = bits_of(0.98f); b <= bits_of(1.08f); ++b) {
    const float x = float_of(b);
    ASSERT_LE(ulp_distance(std::erf(static_cast<double>(x)), erff_hd(x)), 1.36) << "at x = " << x;
  }
}

// 2 / sqrt(pi) e^(-x^2) at the float -x^2 that both it and the C library's expf(-x * x)
// start from: within 2.23 ulp (measured over every 64th float; this sweep: every 193rd) wherever that is a normal
// float, and 0 where the exact value is under 2e-38.
TEST(ErfHd, DerivativeWithinTwoPointTwoFiveUlp) {
  double worst = 0.0;
  float at = 0.f;
  for (const float x : float_sweep(193)) {
    const float y = -(x * x);
    const double ref = 1.1283791670955126 * std::exp(static_cast<double>(y));
    if (y > -87.f) {
      const double e = ulp_distance(ref, erff_hd_derivative(x));
      if (e > worst) worst = e, at = x;
    } else {
      ASSERT_EQ(erff_hd_derivative(x), 0.f) << "at x = " << x;
      ASSERT_LT(ref, 2e-38) << "at x = " << x;
    }
    ASSERT_EQ(bits_of(erff_hd_derivative(-x)), bits_of(erff_hd_derivative(x))) << "not even at " << x;
  }
  EXPECT_LE(worst, 2.25) << "at x = " << at;
}

// erf is odd, within [-1, 1], exactly 1 from 3.9198 on (where 1 - erf(x) is under half an
// ulp of 1); it never falls by more than one ulp from one float to the next (a ~1.3-ulp
// formula cannot promise more where erf rises by half an ulp per float), and the branch
// switch at 1 joins without a step.
TEST(ErfHd, IsOddBoundedOneWhereErfRoundsToOneAndJoinsAtTheSwitch) {
  float prev = 0.f;
  for (const float x : float_sweep(193)) {
    const float t = erff_hd(x);
    ASSERT_LE(t, 1.f) << "x = " << x;
    ASSERT_EQ(bits_of(erff_hd(-x)), bits_of(-t)) << "not odd at x = " << x;
    if (x >= 3.9198f) {
      ASSERT_EQ(t, 1.f) << "x = " << x;
    }
    ASSERT_GE(t, prev > 0.f ? std::nextafter(prev, 0.f) : prev) << "falls at x = " << x;
    prev = t;
  }
  prev = erff_hd(0.98f);
  for (uint32_t b = bits_of(0.98f); b <= bits_of(1.02f); ++b) {
    const float t = erff_hd(float_of(b));
    ASSERT_GE(t, std::nextafter(prev, 0.f)) << "falls at x = " << float_of(b);
    prev = t;
  }
  const float below = erff_hd(std::nextafter(1.f, 0.f)), at_one = erff_hd(1.f);
  EXPECT_LE(at_one - below, 2 * (std::nextafter(at_one, 2.f) - at_one));
  EXPECT_GE(at_one, below);
}

// GELU from erff_hd: within 2^-23 |x| of x Phi(x) (1.88 x 2^-24 measured over every float
// in [-12, 12]; where Phi(x) is tiny the absolute error of 1 + erf dominates, as in
// PyTorch's float formula), its derivative within 2e-7 of Phi(x) + x phi(x) (1.58e-7).
TEST(ErfHd, GeluAndItsDerivativeNearTheExactOnes) {
  double worst = 0.0, worst_d = 0.0;
  float at = 0.f, at_d = 0.f;
  for (uint32_t b = 0; b <= bits_of(12.f); b += 97)
    for (const float x : {float_of(b), -float_of(b)}) {
      const double xd = x, phi = 0.5 * (1 + std::erf(xd / std::sqrt(2.0)));
      const double e = std::fabs(kernels::gelu_hd(x) - xd * phi) / std::max(std::fabs(xd), 1e-38);
      if (e > worst) worst = e, at = x;
      const double d = phi + xd * std::exp(-0.5 * xd * xd) / 2.5066282746310002;  // sqrt(2 pi)
      const double ed = std::fabs(kernels::gelu_hd_derivative(x) - d);
      if (ed > worst_d) worst_d = ed, at_d = x;
    }
  EXPECT_LE(worst, std::ldexp(1.0, -23)) << "at x = " << at;
  EXPECT_LE(worst_d, 2e-7) << "at x = " << at_d;
  EXPECT_EQ(kernels::gelu_hd(0.f), 0.f);
  EXPECT_EQ(kernels::gelu_hd(20.f), 20.f);
  EXPECT_EQ(kernels::gelu_hd(-20.f), -0.f);
  EXPECT_EQ(kernels::gelu_hd_derivative(20.f), 1.f);
  EXPECT_EQ(kernels::gelu_hd_derivative(-20.f), 0.f);
}

TEST(ErfHd, SpecialValues) {
  EXPECT_EQ(bits_of(erff_hd(0.f)), bits_of(0.f));
  EXPECT_EQ(bits_of(erff_hd(-0.f)), bits_of(-0.f));  // the sign of zero kept
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(erff_hd(inf), 1.f);
  EXPECT_EQ(erff_hd(-inf), -1.f);
  EXPECT_EQ(erff_hd_derivative(inf), 0.f);
  EXPECT_FLOAT_EQ(erff_hd_derivative(0.f), 1.1283791670955126f);
  for (const float nan : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()}) {
    EXPECT_TRUE(std::isnan(erff_hd(nan)));
    EXPECT_TRUE(std::isnan(erff_hd_derivative(nan)));
  }
  // Near 0, erf(x) = 2x / sqrt(pi) to within rounding.
  const float tiny = 1e-30f;
  EXPECT_NEAR(erff_hd(tiny), 1.1283791670955126 * tiny, 1e-36);
}

// erf(x) forward, and the backward of sum(erf(x) * w) for a fixed w: dy * erf'(x) per element.
struct ErfRun {
  std::vector<float> y, dx;
};

ErfRun run_erf(const std::vector<float>& v, Device dev) {
  const int64_t n = static_cast<int64_t>(v.size());
  std::vector<float> wv(v.size());
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = 0.25f + 0.5f * float(i % 7);
  Tensor x = Tensor::from_vector(v, {n}).to(dev);
  x.set_requires_grad(true);
  const Tensor w = Tensor::from_vector(wv, {n}).to(dev);
  const Tensor y = ops::erf(x);
  ops::sum(ops::mul(y, w)).backward();
  return {y.cpu().to_vector(), x.grad().cpu().to_vector()};
}

TEST(ErfHd, TheCpuOpAndItsBackwardGiveTheFormulasBits) {
  const std::vector<float> v = mixed_float_inputs();
  const ErfRun r = run_erf(v, Device::cpu());
  ASSERT_EQ(r.y.size(), v.size());
  ASSERT_EQ(r.dx.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(bits_of(r.y[i]), bits_of(erff_hd(v[i]))) << "at x = " << v[i];
    const float dy = 0.25f + 0.5f * float(i % 7);
    ASSERT_EQ(bits_of(r.dx[i]), bits_of(dy * erff_hd_derivative(v[i]))) << "at x = " << v[i];
  }
}

TEST(ErfHdCuda, SameBitsAsTheCpu) {
  IPG_REQUIRE_CUDA();
  const std::vector<float> v = mixed_float_inputs();
  const ErfRun cpu = run_erf(v, Device::cpu());
  const ErfRun gpu = run_erf(v, Device::cuda(0));
  ASSERT_EQ(gpu.y.size(), cpu.y.size());
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < cpu.y.size(); ++i) {
    const bool same_y = bits_of(gpu.y[i]) == bits_of(cpu.y[i]) || (std::isnan(gpu.y[i]) && std::isnan(cpu.y[i]));
    const bool same_dx = bits_of(gpu.dx[i]) == bits_of(cpu.dx[i]) || (std::isnan(gpu.dx[i]) && std::isnan(cpu.dx[i]));
    if (!(same_y && same_dx) && differ++ == 0) first = i;
  }
  EXPECT_EQ(differ, 0u) << "first at x = " << v[first] << ": CPU " << cpu.y[first] << " / "
                        << cpu.dx[first] << ", CUDA " << gpu.y[first] << " / " << gpu.dx[first];
}

}  // namespace
}  // namespace ipg
