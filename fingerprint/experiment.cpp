// Experiment runner (experiment.h): names of the typed settings, the convergence policies
// around extract_fingerprint, loading the zoo once, and each setting's matching rates and
// metrics.
#include "fingerprint/experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "fingerprint/metrics.h"
#include "fingerprint/verify.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/train.h"

namespace ipg {

const char* method_name(Method m) {
  switch (m) {
    case Method::IPGuard:
      return "ipguard";
    case Method::CWL2:
      return "cwl2";
    case Method::FGSM:
      return "fgsm";
    case Method::IGSM:
      return "igsm";
    case Method::Random:
      return "random";
  }
  return "?";
}

Method parse_method(const std::string& name) {
  for (Method m : kAllMethods)
    if (name == method_name(m)) return m;
  throw std::invalid_argument("unknown method '" + name + "' (ipguard, cwl2, fgsm, igsm, random)");
}

const char* param_name(Method m) {
  switch (m) {
    case Method::IPGuard:
    case Method::CWL2:
      return "k";
    case Method::FGSM:
    case Method::IGSM:
      return "eps";
    case Method::Random:
      return "";
  }
  return "";
}

const char* convergence_name(Convergence c) {
  return c == Convergence::Paper ? "paper" : "until-converged";
}

std::string mode_suffix(const Mode& m) {
  return std::string(m.init == Init::Train ? "T" : "R") +
         (m.target == TargetLabel::LeastLikely ? "L" : "R");
}

std::string mode_long(const Mode& m) {
  return std::string(m.init == Init::Train ? "train" : "random") + "/" +
         (m.target == TargetLabel::LeastLikely ? "least-likely" : "random");
}

Mode parse_mode(const std::string& s) {
  for (const Mode& m : kAllModes)
    if (s == mode_suffix(m) || s == mode_long(m)) return m;
  throw std::invalid_argument("unknown mode '" + s +
                              "' (train/least-likely, train/random, random/least-likely, "
                              "random/random, or TL, TR, RL, RR)");
}

namespace {

// A parameter value as people write it: 0.1, 3, 1e-05.
std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

std::string setting_label(const Setting& s) {
  std::string out = method_name(s.method);
  if (s.method != Method::Random) out += std::string(" ") + param_name(s.method) + "=" + number(s.param);
  out += " " + mode_suffix(s.mode);
  if (s.convergence == Convergence::UntilConverged) out += " until-converged";
  return out;
}

std::string setting_id(const Setting& s) {
  std::string out = method_name(s.method);
  if (s.method != Method::Random) {
    out += std::string("_") + param_name(s.method);
    for (char c : number(s.param)) out += c == '.' ? 'p' : (c == '+' ? 'P' : (c == '-' ? 'm' : c));
  }
  out += "_" + mode_suffix(s.mode);
  if (s.convergence == Convergence::UntilConverged) out += "_uc";
  return out;
}

ExtractOptions extract_options(const Setting& s, const ExtractOptions& common) {
  ExtractOptions o = common;
  o.method = method_name(s.method);
  if (s.method == Method::IPGuard || s.method == Method::CWL2) o.k = s.param;
  if (s.method == Method::FGSM || s.method == Method::IGSM) o.eps = s.param;
  o.init = s.mode.init == Init::Train ? "train" : "random";
  o.target = s.mode.target == TargetLabel::LeastLikely ? "least-likely" : "random";
  o.iters = s.budget.iters;
  o.lr = s.budget.lr;
  o.binary_steps = s.budget.binary_steps;
  o.c0 = s.budget.c0;
  o.alpha = s.budget.alpha;
  return o;
}

uint64_t round_seed(uint64_t seed, int64_t round) {
  if (round == 0) return seed;
  // splitmix64 of (seed, round): rounds draw streams unrelated to each other and to seed.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(round + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<double> SettingResult::rates(SuspectGroup g) const {
  const auto& v = g == SuspectGroup::Positive ? positive
                  : g == SuspectGroup::Negative ? negative
                                                : adaptive;
  std::vector<double> out;
  for (const SuspectRate& r : v) out.push_back(r.rate);
  return out;
}

namespace {

ExtractOptions common_options(const ExperimentOptions& e) {
  ExtractOptions o;
  o.n = e.n;
  o.batch = e.batch;
  o.seed = e.seed;
  o.check_every = e.check_every;
  return o;
}

// Appends row `r` of `from` (whose labels are `from_labels`) to the fingerprint being
// assembled.
void take_point(Fingerprint& to, std::vector<int32_t>& labels, const Fingerprint& from,
                const std::vector<int32_t>& from_labels, std::vector<float>& points, int64_t r) {
  const int64_t per = from.points.numel() / from.size();
  points.insert(points.end(), from.points.data() + r * per, from.points.data() + (r + 1) * per);
  labels.push_back(from_labels[static_cast<size_t>(r)]);
  to.source.push_back(from.source[r]);
  to.target.push_back(from.target[r]);
  to.iterations.push_back(from.iterations[r]);
  to.final_loss.push_back(from.final_loss[r]);
  to.converged.push_back(from.converged[r]);
}

}  // namespace

Fingerprint extract_setting(Network& target, const Setting& s, const ExperimentOptions& options,
                            const Tensor* train_images, SettingResult& result,
                            const std::function<void(const ExperimentProgress&)>& progress) {
  const ExtractOptions base = extract_options(s, common_options(options));
  const int64_t n = options.n;
  const bool until = s.convergence == Convergence::UntilConverged;
  const int64_t cap = until ? std::max<int64_t>(1, options.max_draws_factor) * n : n;
  std::vector<Fingerprint> rounds;
  std::vector<int64_t> offsets;  // first candidate index of each round
  int64_t drawn = 0, converged = 0;
  ExperimentProgress pr;
  pr.phase = ExperimentProgress::Phase::Extracting;
  pr.current = &s;
  while (rounds.empty() || (until && converged < n && drawn < cap)) {
    const int64_t r = static_cast<int64_t>(rounds.size());
    int64_t count = n;
    if (r > 0) {  // enough for the successes still missing at the rate seen so far
      const int64_t need = n - converged;
      count = converged > 0 ? static_cast<int64_t>(std::ceil(1.1 * static_cast<double>(need) *
                                                             static_cast<double>(drawn) /
                                                             static_cast<double>(converged)))
                            : drawn;
      count = std::min(std::max(count, need), cap - drawn);
    }
    ExtractOptions o = base;
    o.n = count;
    o.seed = round_seed(options.seed, r);
    pr.round = r;
    pr.drawn = drawn;
    pr.converged = converged;
    rounds.push_back(extract_fingerprint(target, o, train_images, [&](const ExtractProgress& e) {
      pr.extract = e;
      if (progress) progress(pr);
    }));
    offsets.push_back(drawn);
    drawn += count;
    for (uint8_t c : rounds.back().converged) converged += c;
  }
  // The points: every candidate of the paper's single draw; or the first n successes in
  // draw order, topped up with the first failures when the cap was reached.
  std::vector<int64_t> chosen;  // global candidate indices, ascending
  if (!until) {
    for (int64_t i = 0; i < n; ++i) chosen.push_back(i);
  } else {
    int64_t ok = 0;
    for (size_t r = 0; r < rounds.size() && ok < n; ++r)
      for (int64_t i = 0; i < rounds[r].size() && ok < n; ++i)
        if (rounds[r].converged[i]) {
          chosen.push_back(offsets[r] + i);
          ++ok;
        }
    for (size_t r = 0; r < rounds.size() && static_cast<int64_t>(chosen.size()) < n; ++r)
      for (int64_t i = 0; i < rounds[r].size() && static_cast<int64_t>(chosen.size()) < n; ++i)
        if (!rounds[r].converged[i]) chosen.push_back(offsets[r] + i);
    std::sort(chosen.begin(), chosen.end());
  }
  Fingerprint fp;
  const Fingerprint& first = rounds.front();
  fp.method = first.method;
  fp.params = first.params;
  fp.seed = options.seed;
  fp.arch = first.arch;
  fp.created = first.created;
  std::vector<float> points;
  std::vector<int32_t> labels;
  std::vector<std::vector<int32_t>> round_labels;
  for (const Fingerprint& f : rounds) round_labels.push_back(f.labels.to_vector_i32());
  result.converged = 0;
  for (int64_t g : chosen) {
    const size_t r = static_cast<size_t>(
        std::upper_bound(offsets.begin(), offsets.end(), g) - offsets.begin() - 1);
    take_point(fp, labels, rounds[r], round_labels[r], points, g - offsets[r]);
    result.converged += fp.converged.back();
  }
  Shape shape = first.points.shape();
  shape[0] = static_cast<int64_t>(chosen.size());
  fp.points = Tensor::from_vector(points, shape);
  fp.labels = Tensor::from_vector_i32(labels, {shape[0]});
  result.points = shape[0];
  result.drawn = drawn;
  result.origin = chosen;
  result.rounds.clear();
  for (const Fingerprint& f : rounds) result.rounds.push_back(f.size());
  return fp;
}

Tensor start_images(Network& target, const SettingResult& result, const ExperimentOptions& options,
                    const Tensor* train_images, int64_t count) {
  count = std::min<int64_t>(count, static_cast<int64_t>(result.origin.size()));
  Setting s = result.setting;
  s.method = Method::Random;  // its points are the initial points, drawn as every method draws
  std::vector<Fingerprint> rounds(result.rounds.size());
  std::vector<float> out;
  Shape shape;
  for (int64_t p = 0; p < count; ++p) {
    int64_t g = result.origin[static_cast<size_t>(p)];
    size_t r = 0;
    while (r + 1 < result.rounds.size() && g >= result.rounds[r]) g -= result.rounds[r++];
    if (!rounds[r].labels.defined()) {
      ExtractOptions o = extract_options(s, common_options(options));
      o.n = result.rounds[r];
      o.seed = round_seed(options.seed, static_cast<int64_t>(r));
      rounds[r] = extract_fingerprint(target, o, train_images);
    }
    const Tensor& x = rounds[r].points;
    const int64_t per = x.numel() / x.dim(0);
    out.insert(out.end(), x.data() + g * per, x.data() + (g + 1) * per);
    shape = x.shape();
  }
  if (count == 0) return Tensor();
  shape[0] = count;
  return Tensor::from_vector(out, shape);
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
  const ModelConfig& cfg = z.target->config();
  const Tensor probe = Tensor::zeros({1, cfg.in_channels, cfg.height, cfg.width});
  std::vector<ZooModel> kept;
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
    }
  }
  zoo.suspects = kept;  // pointers below are taken after the last change to the vector
  for (size_t i = 0; i < kept.size(); ++i) z.suspects[i].model = &zoo.suspects[i];
  for (SuspectGroup g : {SuspectGroup::Positive, SuspectGroup::Negative})
    if (zoo.group(g).empty())
      throw std::runtime_error(zoo.dir + ": no " + std::string(group_name(g)) +
                               " suspect could be loaded (see the problems above)");
  return z;
}

SettingResult run_setting(LoadedZoo& zoo, const Setting& s, size_t i, size_t count,
                          const ExperimentOptions& options, const Tensor* train_images,
                          Device device, Fingerprint& fp,
                          const std::function<void(const ExperimentProgress&)>& progress) {
  ExperimentProgress pr;
  pr.settings = count;
  pr.setting = i;
  pr.current = &s;
  SettingResult r;
  r.setting = s;
  const auto t0 = std::chrono::steady_clock::now();
  fp = extract_setting(*zoo.target, s, options, train_images, r, [&](const ExperimentProgress& e) {
    ExperimentProgress p = e;
    p.setting = i;
    p.settings = count;
    if (progress) progress(p);
  });
  r.extract_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.seconds_per_100 = r.extract_seconds * 100.0 / static_cast<double>(r.points);
  pr.phase = ExperimentProgress::Phase::Labeling;
  pr.suspects = zoo.suspects.size();
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
  return r;
}

std::vector<SettingResult> run_experiment(LoadedZoo& zoo, const std::vector<Setting>& settings,
                                          const ExperimentOptions& options,
                                          const Tensor* train_images, Device device,
                                          const ExperimentHooks& hooks) {
  std::vector<SettingResult> results;
  ExperimentProgress pr;
  pr.settings = settings.size();
  for (size_t i = 0; i < settings.size(); ++i) {
    const Setting& s = settings[i];
    pr.setting = i;
    pr.current = &s;
    std::optional<SettingResult> old = hooks.reuse ? hooks.reuse(s) : std::nullopt;
    if (old) {
      old->resumed = true;
      results.push_back(*old);
    } else {
      Fingerprint fp;
      SettingResult r =
          run_setting(zoo, s, i, settings.size(), options, train_images, device, fp, hooks.progress);
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
