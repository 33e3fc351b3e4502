// AUC, TPR at a bounded FPR and ARUC on small cases worked out by hand from their
// definitions (paper, section 5.1.5; fingerprint/metrics.h).
#include <gtest/gtest.h>

#include "fingerprint/metrics.h"
#include "fingerprint/verify.h"

namespace ipg {
namespace {

TEST(Metrics, AucCountsWinningPairsAndHalfTies) {
  // Pairs (p, n): (.9,.2) win, (.9,.6) win, (.5,.2) win, (.5,.6) loss -> 3 of 4.
  EXPECT_DOUBLE_EQ(auc({0.9, 0.5}, {0.2, 0.6}), 0.75);
  // (.5,.5) tie counts 1/2, (.5,.1) win -> 1.5 of 2.
  EXPECT_DOUBLE_EQ(auc({0.5}, {0.5, 0.1}), 0.75);
  EXPECT_DOUBLE_EQ(auc({1.0, 0.9}, {0.0, 0.1}), 1.0);
  EXPECT_DOUBLE_EQ(auc({0.0}, {0.5}), 0.0);
  EXPECT_THROW(auc({}, {0.5}), std::invalid_argument);
}

TEST(Metrics, TprAtFprTakesTheBestThresholdWithinTheBound) {
  // Negatives .85 and .1: with FPR 0 allowed, tau must exceed .85, so only .9 of the
  // positives (.9, .8, .3) is verified: 1/3.
  EXPECT_DOUBLE_EQ(tpr_at_fpr({0.9, 0.8, 0.3}, {0.85, 0.1}, 0.05), 1.0 / 3.0);
  // Allowing one of two negatives (FPR .5), tau = .3 verifies all three positives.
  EXPECT_DOUBLE_EQ(tpr_at_fpr({0.9, 0.8, 0.3}, {0.85, 0.1}, 0.5), 1.0);
  // 20 negatives, one at .85: tau = .3 has FPR 1/20 = .05, which the bound includes.
  std::vector<double> neg(19, 0.1);
  neg.push_back(0.85);
  EXPECT_DOUBLE_EQ(tpr_at_fpr({0.9, 0.8, 0.3}, neg, 0.05), 1.0);
  EXPECT_DOUBLE_EQ(tpr_at_fpr({0.9, 0.8, 0.3}, neg, 0.04), 1.0 / 3.0);
  // Every positive below every verified negative: nothing can be verified safely.
  EXPECT_DOUBLE_EQ(tpr_at_fpr({0.1}, {0.9}, 0.05), 0.0);
}

TEST(Metrics, ArucOfAHandWorkedCase) {
  // Positives .9, .5; negatives .2, .6. min(R, U) over tau = t/100:
  //   (0, .2]: R 1, U 0 -> 0;  (.2, .5]: R 1, U 1/2 -> 1/2 (30 thresholds);
  //   (.5, .6]: R 1/2, U 1/2 -> 1/2 (10);  (.6, .9]: R 1/2, U 1 -> 1/2 (30);  (.9, 1]: 0.
  // Sum 35, ARUC .35.
  EXPECT_NEAR(aruc({0.9, 0.5}, {0.2, 0.6}), 0.35, 1e-12);
}

TEST(Metrics, RobustnessUniquenessCurveIsWhatArucIntegrates) {
  const std::vector<double> p = {0.9, 0.5}, n = {0.2, 0.6};
  const RobustnessUniquenessCurve c = robustness_uniqueness_curve(p, n, 100);
  ASSERT_EQ(c.tau.size(), 101u);
  double area = 0;
  for (size_t t = 1; t <= 100; ++t) {
    EXPECT_DOUBLE_EQ(c.robustness[t], robustness(p, c.tau[t]));
    EXPECT_DOUBLE_EQ(c.uniqueness[t], uniqueness(n, c.tau[t]));
    area += std::min(c.robustness[t], c.uniqueness[t]) / 100;
  }
  EXPECT_NEAR(area, aruc(p, n), 1e-12);
  EXPECT_DOUBLE_EQ(c.robustness[0], 1.0);  // tau = 0 verifies everyone
  EXPECT_DOUBLE_EQ(c.uniqueness[0], 0.0);
}

}  // namespace
}  // namespace ipg
