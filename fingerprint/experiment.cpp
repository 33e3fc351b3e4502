// Experiment runner: extraction per setting, then each suspect's matching rate (the
// suspects are loaded once and kept), then ARUC.
#include "fingerprint/experiment.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "fingerprint/verify.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/train.h"

namespace ipg {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> models_in(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".h5") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Zoo scan_zoo(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw std::invalid_argument(dir + ": not a folder");
  Zoo z;
  z.target = (root / "target.h5").string();
  if (!fs::is_regular_file(z.target))
    throw std::invalid_argument(dir + ": no target.h5 (the zoo's protected model)");
  z.positives = models_in(root / "positive");
  z.negatives = models_in(root / "negative");
  if (z.positives.empty()) throw std::invalid_argument(dir + "/positive: no .h5 suspects");
  if (z.negatives.empty()) throw std::invalid_argument(dir + "/negative: no .h5 suspects");
  return z;
}

std::vector<SettingResult> run_experiment(
    const Zoo& zoo, const std::vector<ExperimentSetting>& settings, const ExtractOptions& base,
    const Tensor* train_images, Device device, int batch,
    const std::function<void(const SettingResult&)>& on_result) {
  auto target = load_model(zoo.target);
  target->to(device);
  std::vector<std::unique_ptr<Classifier>> pos, neg;
  for (const auto& p : zoo.positives) pos.push_back(load_classifier(p));
  for (const auto& p : zoo.negatives) neg.push_back(load_classifier(p));
  std::vector<SettingResult> results;
  for (const ExperimentSetting& s : settings) {
    ExtractOptions o = base;
    o.method = s.method;
    if (s.method == "ipguard" || s.method == "cwl2") o.k = s.param;
    if (s.method == "fgsm" || s.method == "igsm") o.eps = s.param;
    validate(o);
    SettingResult r;
    r.setting = s;
    const auto t0 = std::chrono::steady_clock::now();
    const Fingerprint fp = extract_fingerprint(*target, o, train_images);
    r.extract_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.points = fp.size();
    for (uint8_t c : fp.converged) r.converged += c;
    auto rate = [&](Classifier& m) {
      const std::vector<int32_t> got = predict(m, fp.points, device, batch);
      return matching_rate(fp.labels, Tensor::from_vector_i32(got, {fp.size()}));
    };
    for (auto& m : pos) r.positive_rates.push_back(rate(*m));
    for (auto& m : neg) r.negative_rates.push_back(rate(*m));
    r.aruc = aruc(r.positive_rates, r.negative_rates, 100);
    if (on_result) on_result(r);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace ipg
