// Experiment runner (experiment.h): loading the zoo once, each setting (or batch group of
// settings) extracted (experiment_extract.cpp) and rated against every suspect, in order.
#include "fingerprint/experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>

#include "fingerprint/metrics.h"
#include "fingerprint/verify.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/train.h"

namespace ipg {

std::vector<double> SettingResult::rates(SuspectGroup g) const {
  const auto& v = g == SuspectGroup::Positive ? positive
                  : g == SuspectGroup::Negative ? negative
                                                : adaptive;
  std::vector<double> out;
  for (const SuspectRate& r : v) out.push_back(r.rate);
  return out;
}

LoadedZoo load_zoo(Zoo& zoo, Device device,
                   const std::function<void(const ExperimentProgress&)>& progress) {
  LoadedZoo z;
  try {
    z.target = load_model(zoo.target.path);
  } catch (const std::exception& e) {
    throw std::runtime_error(zoo.target.path + ": the zoo's target cannot be loaded: " + e.what());
  }
  z.target->to(device);
  z.target_sha256 = zoo.target.sha256;
  const ModelConfig& cfg = z.target->config();
  const Tensor probe = Tensor::zeros({1, cfg.in_channels, cfg.height, cfg.width});
  std::vector<ZooModel> kept;
  // Per group, the first file that could not be used and how many: the error when a group
  // is left empty names them (callers print zoo.problems only after a successful load).
  std::map<SuspectGroup, std::pair<std::string, int>> refused;
  ExperimentProgress pr;
  pr.phase = ExperimentProgress::Phase::Loading;
  pr.suspects = zoo.suspects.size();
  for (size_t i = 0; i < zoo.suspects.size(); ++i) {
    const ZooModel& m = zoo.suspects[i];
    pr.suspect = i;
    pr.file = m.file;
    if (progress) progress(pr);
    try {
      auto c = load_classifier(m.path);
      predict(*c, probe, device, 1);  // can it label the target's inputs at all?
      LoadedSuspect s;
      s.family = c->arch();
      s.classifier = std::move(c);
      z.suspects.push_back(std::move(s));
      kept.push_back(m);
    } catch (const std::exception& e) {
      zoo.problems.push_back({m.file, std::string("cannot be used: ") + e.what()});
      auto& [first, count] = refused[m.group];
      const std::string why = e.what();
      if (count++ == 0) first = why.find(m.path) == std::string::npos ? m.file + ": " + why : why;
    }
  }
  zoo.suspects = kept;  // pointers below are taken after the last change to the vector
  for (size_t i = 0; i < kept.size(); ++i) z.suspects[i].model = &zoo.suspects[i];
  for (SuspectGroup g : {SuspectGroup::Positive, SuspectGroup::Negative})
    if (zoo.group(g).empty()) {
      const auto& [first, count] = refused[g];
      throw std::runtime_error(
          zoo.dir + ": no " + std::string(group_name(g)) + " suspect could be loaded" +
          (count == 0 ? std::string()
                      : " (" + first +
                            (count > 1 ? "; and " + std::to_string(count - 1) + " more" : "") +
                            ")"));
    }
  return z;
}

void rate_suspects(LoadedZoo& zoo, const Fingerprint& fp, SettingResult& r, size_t index,
                   size_t count, const ExperimentOptions& options, Device device,
                   const std::function<void(const ExperimentProgress&)>& progress) {
  ExperimentProgress pr;
  pr.settings = count;
  pr.setting = index;
  pr.current = &r.setting;
  pr.phase = ExperimentProgress::Phase::Labeling;
  pr.suspects = zoo.suspects.size();
  r.positive.clear();
  r.negative.clear();
  r.adaptive.clear();
  for (size_t k = 0; k < zoo.suspects.size(); ++k) {
    LoadedSuspect& su = zoo.suspects[k];
    pr.suspect = k;
    pr.file = su.model->file;
    if (progress) progress(pr);
    const std::vector<int32_t> got = predict(*su.classifier, fp.points, device, options.predict_batch);
    const SuspectRate rate{su.model->file,
                           matching_rate(fp.labels, Tensor::from_vector_i32(got, {fp.size()}))};
    (su.model->group == SuspectGroup::Positive   ? r.positive
     : su.model->group == SuspectGroup::Negative ? r.negative
                                                 : r.adaptive)
        .push_back(rate);
  }
  const auto p = r.rates(SuspectGroup::Positive), q = r.rates(SuspectGroup::Negative);
  r.aruc = aruc(p, q, 100);
  r.auc = auc(p, q);
  r.tpr_at_fpr5 = tpr_at_fpr(p, q, 0.05);
}

namespace {

// The extraction of a batch group (indices into `planned`), its progress numbered as in
// `planned`.
std::vector<Fingerprint> extract_group(LoadedZoo& zoo, const std::vector<Setting>& planned,
                                       const std::vector<size_t>& group,
                                       const ExperimentOptions& options,
                                       const Tensor* train_images,
                                       std::vector<SettingResult>& results,
                                       const std::function<void(const ExperimentProgress&)>& progress) {
  std::vector<Setting> settings;
  for (size_t i : group) settings.push_back(planned.at(i));
  std::vector<Fingerprint> fps = extract_settings(*zoo.target, settings, options, train_images,
                                                  results, [&](const ExperimentProgress& e) {
                                                    ExperimentProgress p = e;
                                                    p.setting = group.at(e.setting);
                                                    p.settings = planned.size();
                                                    if (progress) progress(p);
                                                  });
  // The fingerprint names the model it was taken from, as extract's do (verify's evidence
  // report then knows the target's own file when it sees it).
  for (Fingerprint& fp : fps) fp.model_sha256 = zoo.target_sha256;
  return fps;
}

}  // namespace

std::vector<SettingResult> run_settings(
    LoadedZoo& zoo, const std::vector<Setting>& planned, const std::vector<size_t>& group,
    const ExperimentOptions& options, const Tensor* train_images, Device device,
    std::vector<Fingerprint>& fps, const std::function<void(const ExperimentProgress&)>& progress) {
  if (group.empty()) return {};
  std::vector<SettingResult> results;
  fps = extract_group(zoo, planned, group, options, train_images, results, progress);
  for (size_t g = 0; g < group.size(); ++g)
    rate_suspects(zoo, fps[g], results[g], group[g], planned.size(), options, device, progress);
  return results;
}

std::vector<SettingResult> run_experiment(LoadedZoo& zoo, const std::vector<Setting>& settings,
                                          const ExperimentOptions& options,
                                          const Tensor* train_images, Device device,
                                          const ExperimentHooks& hooks) {
  // Settings an earlier run finished are taken as they are; the others run in their batch
  // groups, extracted when the group's first setting comes up and then labeled, reported
  // and recorded one by one in planned order (an interruption loses at most the
  // fingerprints of the group in progress).
  std::vector<std::optional<SettingResult>> old(settings.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < settings.size(); ++i) {
    if (hooks.reuse) old[i] = hooks.reuse(settings[i]);
    if (!old[i]) todo.push_back(i);
  }
  const std::vector<std::vector<size_t>> groups = batch_groups(settings, todo, options);
  std::vector<int> group_of(settings.size(), -1);
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i : groups[g]) group_of[i] = static_cast<int>(g);
  std::vector<std::optional<SettingResult>> pending(settings.size());
  std::vector<Fingerprint> pending_fp(settings.size());
  std::vector<SettingResult> results;
  ExperimentProgress pr;
  pr.settings = settings.size();
  for (size_t i = 0; i < settings.size(); ++i) {
    pr.setting = i;
    pr.current = &settings[i];
    if (old[i]) {
      old[i]->resumed = true;
      results.push_back(*old[i]);
    } else {
      if (!pending[i]) {  // the first of its group: extract the whole group
        const std::vector<size_t>& g = groups[static_cast<size_t>(group_of[i])];
        std::vector<SettingResult> rs;
        std::vector<Fingerprint> fps =
            extract_group(zoo, settings, g, options, train_images, rs, hooks.progress);
        for (size_t m = 0; m < g.size(); ++m) {
          pending[g[m]] = std::move(rs[m]);
          pending_fp[g[m]] = std::move(fps[m]);
        }
      }
      SettingResult r = std::move(*pending[i]);
      Fingerprint fp = std::move(pending_fp[i]);
      pending[i].reset();
      rate_suspects(zoo, fp, r, i, settings.size(), options, device, hooks.progress);
      if (hooks.on_result) hooks.on_result(r, fp);
      results.push_back(std::move(r));
    }
    pr.phase = ExperimentProgress::Phase::Done;
    pr.result = &results.back();
    if (hooks.progress) hooks.progress(pr);
  }
  return results;
}

}  // namespace ipg
