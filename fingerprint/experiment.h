// The paper's evaluation (section 5) over a zoo folder: every method x parameter setting
// extracts a fingerprint from the target, every suspect is verified against it, and the
// matching rates of the positive (post-processed copies) and negative (independently
// trained) suspects give the ARUC (r = 100).
//
// Zoo folder layout (build it with `ipguard train` and `ipguard postprocess`):
//   DIR/target.h5          the protected network
//   DIR/positive/*.h5      post-processed copies of it (any model files)
//   DIR/negative/*.h5      independently trained models (networks or random forests)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "fingerprint/extract.h"

namespace ipg {

struct Zoo {
  std::string target;
  std::vector<std::string> positives, negatives;  // sorted by name
};

// Lists a zoo folder; throws std::invalid_argument naming what is missing.
Zoo scan_zoo(const std::string& dir);

// One method with one parameter value (ipguard / cwl2: k; fgsm / igsm: eps).
struct ExperimentSetting {
  std::string method;
  double param = 0;
};

struct SettingResult {
  ExperimentSetting setting;
  double aruc = 0;
  std::vector<double> positive_rates, negative_rates;  // in Zoo order
  int64_t converged = 0, points = 0;
  double extract_seconds = 0;
};

// Runs every setting on the zoo: extraction options from `base` (method and k / eps
// replaced per setting), suspects labeled on `device` in batches of `batch`.
std::vector<SettingResult> run_experiment(
    const Zoo& zoo, const std::vector<ExperimentSetting>& settings, const ExtractOptions& base,
    const Tensor* train_images, Device device, int batch = 500,
    const std::function<void(const SettingResult&)>& on_result = {});

}  // namespace ipg
