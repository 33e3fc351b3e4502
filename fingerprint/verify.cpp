// Matching rate and ARUC.
#include "fingerprint/verify.h"

#include <algorithm>
#include <stdexcept>

#include "engine/error.h"
#include "fingerprint/fingerprint_file.h"

namespace ipg {

double matching_rate(const Tensor& fingerprint_labels, const Tensor& suspect_labels) {
  if (fingerprint_labels.ndim() != 1 || fingerprint_labels.shape() != suspect_labels.shape() ||
      fingerprint_labels.numel() == 0)
    throw ShapeError("matching_rate: label vectors " + shape_str(fingerprint_labels.shape()) +
                     " and " + shape_str(suspect_labels.shape()) +
                     " must be non-empty and of equal length");
  const std::vector<int32_t> a = fingerprint_labels.to_vector_i32();
  const std::vector<int32_t> b = suspect_labels.to_vector_i32();
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

int64_t classes_shown(const Fingerprint& fp) {
  int64_t shown = 0;
  for (int32_t l : fp.labels.to_vector_i32()) shown = std::max<int64_t>(shown, l + 1);
  for (const std::vector<int32_t>* v : {&fp.source, &fp.target})
    for (int32_t l : *v) shown = std::max<int64_t>(shown, l + 1);
  return shown;
}

double robustness(const std::vector<double>& positive_rates, double tau) {
  if (positive_rates.empty()) throw std::invalid_argument("robustness: no positive suspects");
  const auto n = std::count_if(positive_rates.begin(), positive_rates.end(),
                               [tau](double m) { return m >= tau; });
  return static_cast<double>(n) / static_cast<double>(positive_rates.size());
}

double uniqueness(const std::vector<double>& negative_rates, double tau) {
  if (negative_rates.empty()) throw std::invalid_argument("uniqueness: no negative suspects");
  const auto n = std::count_if(negative_rates.begin(), negative_rates.end(),
                               [tau](double m) { return m < tau; });
  return static_cast<double>(n) / static_cast<double>(negative_rates.size());
}

double aruc(const std::vector<double>& positive_rates, const std::vector<double>& negative_rates,
            int r) {
  if (r <= 0) throw std::invalid_argument("aruc: r must be positive");
  double acc = 0.0;
  for (int t = 1; t <= r; ++t) {
    const double tau = static_cast<double>(t) / r;
    acc += std::min(robustness(positive_rates, tau), uniqueness(negative_rates, tau));
  }
  return acc / r;
}

}  // namespace ipg
