// Matching rate and ARUC (paper, section 5.1.5).
#include <gtest/gtest.h>

#include "engine/error.h"
#include "fingerprint/verify.h"

namespace ipg {
namespace {

TEST(Verify, MatchingRateCountsEqualLabels) {
  const Tensor fp = Tensor::from_vector_i32({0, 1, 2, 3}, {4});
  EXPECT_DOUBLE_EQ(matching_rate(fp, Tensor::from_vector_i32({0, 1, 2, 3}, {4})), 1.0);
  EXPECT_DOUBLE_EQ(matching_rate(fp, Tensor::from_vector_i32({0, 9, 2, 9}, {4})), 0.5);
  EXPECT_THROW(matching_rate(fp, Tensor::from_vector_i32({0, 1}, {2})), ShapeError);
}

TEST(Verify, ArucIsOneWhenPositivesAndNegativesSeparate) {
  EXPECT_DOUBLE_EQ(aruc({1.0, 1.0}, {0.0, 0.0}), 1.0);
}

TEST(Verify, ArucOfAFixedCase) {
  // Positives all at 0.8, negatives all at 0.3: min(R, U) is 1 for tau in (0.3, 0.8],
  // i.e. t = 31..80 -> 50 of 100 thresholds.
  EXPECT_NEAR(aruc({0.8, 0.8}, {0.3, 0.3}), 0.50, 1e-12);
  // Overlapping sets can only lower it.
  EXPECT_LT(aruc({0.8, 0.2}, {0.3, 0.9}), 0.5);
}

TEST(Verify, RobustnessAndUniquenessAtThreshold) {
  EXPECT_DOUBLE_EQ(robustness({0.5, 0.7, 0.9}, 0.7), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(uniqueness({0.5, 0.7, 0.9}, 0.7), 1.0 / 3.0);
  EXPECT_THROW(robustness({}, 0.5), std::invalid_argument);
}

}  // namespace
}  // namespace ipg
