// AUC, TPR at a bounded FPR, and the robustness / uniqueness curves (metrics.h).
#include "fingerprint/metrics.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "fingerprint/verify.h"

namespace ipg {

namespace {

void need_both(const std::vector<double>& p, const std::vector<double>& n, const char* what) {
  if (p.empty() || n.empty())
    throw std::invalid_argument(std::string(what) + ": needs positive and negative suspects");
}

double fraction_at_least(const std::vector<double>& rates, double tau) {
  const auto k = std::count_if(rates.begin(), rates.end(), [tau](double m) { return m >= tau; });
  return static_cast<double>(k) / static_cast<double>(rates.size());
}

}  // namespace

double auc(const std::vector<double>& positive_rates, const std::vector<double>& negative_rates) {
  need_both(positive_rates, negative_rates, "auc");
  double wins = 0;
  for (double p : positive_rates)
    for (double n : negative_rates) wins += p > n ? 1.0 : (p == n ? 0.5 : 0.0);
  return wins / (static_cast<double>(positive_rates.size()) *
                 static_cast<double>(negative_rates.size()));
}

double tpr_at_fpr(const std::vector<double>& positive_rates,
                  const std::vector<double>& negative_rates, double max_fpr) {
  need_both(positive_rates, negative_rates, "tpr_at_fpr");
  std::vector<double> taus = positive_rates;
  taus.insert(taus.end(), negative_rates.begin(), negative_rates.end());
  taus.push_back(std::numeric_limits<double>::infinity());
  double best = 0;
  for (double tau : taus)
    if (fraction_at_least(negative_rates, tau) <= max_fpr)
      best = std::max(best, fraction_at_least(positive_rates, tau));
  return best;
}

RobustnessUniquenessCurve robustness_uniqueness_curve(const std::vector<double>& positive_rates,
                                                      const std::vector<double>& negative_rates,
                                                      int r) {
  need_both(positive_rates, negative_rates, "robustness_uniqueness_curve");
  if (r <= 0) throw std::invalid_argument("robustness_uniqueness_curve: r must be positive");
  RobustnessUniquenessCurve c;
  for (int t = 0; t <= r; ++t) {
    const double tau = static_cast<double>(t) / r;
    c.tau.push_back(tau);
    c.robustness.push_back(robustness(positive_rates, tau));
    c.uniqueness.push_back(uniqueness(negative_rates, tau));
  }
  return c;
}

}  // namespace ipg
