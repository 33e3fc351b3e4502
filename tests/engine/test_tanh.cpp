// tanhf_hd (kernels/common/tanh_math.h), the tanh of the engine's tanh op and of CW-L2's
// step on both devices: its error against the exact tanh over a dense sweep of floats, its
// shape (odd, non-decreasing, within [-1, 1], exactly 1 where tanh rounds to 1), the special
// values, the CPU op's vector loop giving the scalar formula's bits, and CUDA the CPU's bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/ops/elementwise.h"
#include "kernels/common/tanh_math.h"
#include "tests/support/float_bits.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

using testing::bits_of;
using testing::float_of;
using testing::float_sweep;
using testing::mixed_float_inputs;

using kernels::tanhf_hd;

// |got - tanh(x)| in ulp of the float nearest tanh(x).
double ulp_error(float x, float got) { return testing::ulp_distance(std::tanh(static_cast<double>(x)), got); }

// Over every non-negative float the largest error is 1.322 ulp (at 0.62993, just above the
// switch to the exponential branch); glibc's tanhf reaches 2.19 by this measure. A wrong
// coefficient or a lost rounding step shows up as several ulp.
TEST(TanhHd, WithinOnePointThreeThreeUlpOfTheExactTanh) {
  double worst = 0.0;
  float at = 0.f;
  for (const float x : float_sweep(193)) {
    const double e = ulp_error(x, tanhf_hd(x));
    if (e > worst) worst = e, at = x;
  }
  EXPECT_LE(worst, 1.33) << "at x = " << at;
  // Near the branch switch, where both formulas are least accurate, every float.
  for (uint32_t b = bits_of(0.6f); b <= bits_of(0.66f); ++b)
    ASSERT_LE(ulp_error(float_of(b), tanhf_hd(float_of(b))), 1.33) << "at x = " << float_of(b);
}

TEST(TanhHd, IsOddNonDecreasingBoundedAndOneWhereTanhRoundsToOne) {
  float prev = 0.f;
  for (const float x : float_sweep(193)) {
    const float t = tanhf_hd(x);
    ASSERT_GE(t, prev) << "decreases at x = " << x;
    ASSERT_LE(t, 1.f) << "x = " << x;
    ASSERT_EQ(bits_of(tanhf_hd(-x)), bits_of(-t)) << "not odd at x = " << x;
    if (x >= 9.1f) {  // 1 - tanh(9.1) is under half an ulp of 1
      ASSERT_EQ(t, 1.f) << "x = " << x;
    }
    prev = t;
  }
  // The branch switch, every float: no step down.
  prev = tanhf_hd(0.6f);
  for (uint32_t b = bits_of(0.6f); b <= bits_of(0.66f); ++b) {
    ASSERT_GE(tanhf_hd(float_of(b)), prev) << "decreases at x = " << float_of(b);
    prev = tanhf_hd(float_of(b));
  }
}

TEST(TanhHd, SpecialValues) {
  EXPECT_EQ(bits_of(tanhf_hd(0.f)), bits_of(0.f));
  EXPECT_EQ(bits_of(tanhf_hd(-0.f)), bits_of(-0.f));  // the sign of zero kept
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(tanhf_hd(inf), 1.f);
  EXPECT_EQ(tanhf_hd(-inf), -1.f);
  EXPECT_TRUE(std::isnan(tanhf_hd(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(tanhf_hd(-std::numeric_limits<float>::quiet_NaN())));
  const float tiny = std::numeric_limits<float>::denorm_min();  // tanh(x) = x below 2^-12
  EXPECT_EQ(tanhf_hd(tiny), tiny);
  EXPECT_EQ(tanhf_hd(-1e-30f), -1e-30f);
}

TEST(TanhHd, TheCpuOpGivesTheFormulasBits) {
  const std::vector<float> v = mixed_float_inputs();
  const Tensor x = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  const std::vector<float> y = ops::tanh(x).to_vector();
  ASSERT_EQ(y.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(bits_of(y[i]), bits_of(tanhf_hd(v[i]))) << "at x = " << v[i];
}

TEST(TanhHdCuda, SameBitsAsTheCpu) {
  IPG_REQUIRE_CUDA();
  const std::vector<float> v = mixed_float_inputs();
  const Tensor x = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  const std::vector<float> cpu = ops::tanh(x).to_vector();
  const std::vector<float> gpu = ops::tanh(x.to(Device::cuda(0))).cpu().to_vector();
  ASSERT_EQ(gpu.size(), cpu.size());
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < cpu.size(); ++i)
    if (bits_of(gpu[i]) != bits_of(cpu[i]) && !(std::isnan(gpu[i]) && std::isnan(cpu[i])))
      if (differ++ == 0) first = i;
  EXPECT_EQ(differ, 0u) << "first at x = " << v[first] << ": CPU " << cpu[first] << ", CUDA "
                        << gpu[first];
}

}  // namespace
}  // namespace ipg
