// Verification metrics (paper, section 4.3 and 5.1.5): the matching rate of a suspect on a
// fingerprint, and ARUC over sets of positive and negative suspects.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace ipg {

struct Fingerprint;

// Fraction of fingerprint points whose suspect label equals the fingerprint label.
// Both int32 [n] with n > 0, on any devices.
double matching_rate(const Tensor& fingerprint_labels, const Tensor& suspect_labels);

// The classes a fingerprint shows: 1 + the largest of its labels and its candidates' source
// and target classes (the target gives them all). A suspect that states no class count (a
// command, a Python callable) is held to these: a label past them is no class, not a
// mismatch.
int64_t classes_shown(const Fingerprint& fp);

// R(tau): fraction of positives with matching rate >= tau.
double robustness(const std::vector<double>& positive_rates, double tau);
// U(tau): fraction of negatives with matching rate < tau.
double uniqueness(const std::vector<double>& negative_rates, double tau);
// ARUC = (1/r) * sum_{t=1..r} min(R(t/r), U(t/r)); the paper uses r = 100.
double aruc(const std::vector<double>& positive_rates, const std::vector<double>& negative_rates,
            int r = 100);

}  // namespace ipg
