// Metrics beside ARUC (fingerprint/verify.h) for the experiment's tables: AUC, the true
// positive rate at a bounded false positive rate, and the robustness and uniqueness curves
// that ARUC integrates (the paper's Figure 2). A suspect is "verified" at threshold tau when
// its matching rate is >= tau (section 5.1.5), so positives are the verified class.
#pragma once

#include <vector>

namespace ipg {

// AUC (section 5.1.5): the probability that a random positive's matching rate exceeds a
// random negative's, ties counting one half (the Mann-Whitney statistic over all pairs).
// Both lists non-empty (std::invalid_argument otherwise).
double auc(const std::vector<double>& positive_rates, const std::vector<double>& negative_rates);

// The largest fraction of positives verified (rate >= tau) over thresholds tau at which at
// most `max_fpr` of the negatives are verified; tau ranges over every rate seen and above
// all of them (verifying nothing: TPR 0, FPR 0), so the answer always exists.
double tpr_at_fpr(const std::vector<double>& positive_rates,
                  const std::vector<double>& negative_rates, double max_fpr);

// R(t/r) and U(t/r) for t = 0..r (r + 1 points each), for plotting.
struct RobustnessUniquenessCurve {
  std::vector<double> tau, robustness, uniqueness;
};
RobustnessUniquenessCurve robustness_uniqueness_curve(const std::vector<double>& positive_rates,
                                                      const std::vector<double>& negative_rates,
                                                      int r = 100);

}  // namespace ipg
