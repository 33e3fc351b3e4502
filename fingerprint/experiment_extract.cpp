// A setting's extraction (experiment.h): the paper's single draw or draws until n
// candidates converge, settings whose first draws share one batch (batch_groups,
// extract_settings), and the start images of a result's points drawn again.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "fingerprint/experiment.h"

namespace ipg {
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

// A setting's extraction from its round 0 (the paper's draw, run alone or in a shared
// batch): under until-converged the further rounds, then the fingerprint's points.
Fingerprint settle(Network& target, const Setting& s, const ExperimentOptions& options,
                   const Tensor* train_images, Fingerprint round0, SettingResult& result,
                   const std::function<void(const ExperimentProgress&)>& progress) {
  const ExtractOptions base = extract_options(s, common_options(options));
  const int64_t n = options.n;
  const bool until = s.convergence == Convergence::UntilConverged;
  const int64_t cap = until ? std::max<int64_t>(1, options.max_draws_factor) * n : n;
  std::vector<Fingerprint> rounds;
  std::vector<int64_t> offsets{0};  // first candidate index of each round
  int64_t drawn = round0.size(), converged = 0;
  for (uint8_t c : round0.converged) converged += c;
  rounds.push_back(std::move(round0));
  ExperimentProgress pr;
  pr.phase = ExperimentProgress::Phase::Extracting;
  pr.current = &s;
  while (until && converged < n && drawn < cap) {
    const int64_t r = static_cast<int64_t>(rounds.size());
    // Enough for the successes still missing at the rate seen so far.
    const int64_t need = n - converged;
    int64_t count = converged > 0 ? static_cast<int64_t>(std::ceil(
                                        1.1 * static_cast<double>(need) *
                                        static_cast<double>(drawn) / static_cast<double>(converged)))
                                  : drawn;
    count = std::min(std::max(count, need), cap - drawn);
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

}  // namespace

std::vector<Fingerprint> extract_settings(
    Network& target, const std::vector<Setting>& group, const ExperimentOptions& options,
    const Tensor* train_images, std::vector<SettingResult>& results,
    const std::function<void(const ExperimentProgress&)>& progress) {
  using clock = std::chrono::steady_clock;
  auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  std::vector<ExtractOptions> first;  // round 0 of every setting: the paper's draw
  for (const Setting& s : group) first.push_back(extract_options(s, common_options(options)));
  ExperimentProgress pr;
  pr.phase = ExperimentProgress::Phase::Extracting;
  pr.setting = 0;
  pr.current = group.empty() ? nullptr : &group.front();
  pr.shared = group.size();
  auto report = [&](const ExtractProgress& e) {
    pr.extract = e;
    if (progress) progress(pr);
  };
  const auto t0 = clock::now();
  std::vector<Fingerprint> round0;
  if (group.size() == 1)
    round0.push_back(extract_fingerprint(target, first.front(), train_images, report));
  else
    round0 = extract_fingerprints(target, first, train_images, report);
  // Table 8's rule for a shared batch: each setting is charged an equal share of the
  // batch's time (their candidate counts are equal), plus its own later rounds.
  const double share = seconds_since(t0) / static_cast<double>(std::max<size_t>(1, group.size()));
  results.assign(group.size(), SettingResult());
  std::vector<Fingerprint> out;
  for (size_t g = 0; g < group.size(); ++g) {
    SettingResult& r = results[g];
    r.setting = group[g];
    r.shared = static_cast<int64_t>(group.size());
    const auto t1 = clock::now();
    out.push_back(settle(target, group[g], options, train_images, std::move(round0[g]), r,
                         [&](const ExperimentProgress& e) {
                           ExperimentProgress p = e;
                           p.setting = g;
                           if (progress) progress(p);
                         }));
    r.extract_seconds = share + seconds_since(t1);
    r.seconds_per_100 = r.extract_seconds * 100.0 / static_cast<double>(r.points);
  }
  return out;
}

std::vector<std::vector<size_t>> batch_groups(const std::vector<Setting>& settings,
                                              const ExperimentOptions& options) {
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < settings.size(); ++i) {
    const ExtractOptions o = extract_options(settings[i], common_options(options));
    bool placed = false;
    for (std::vector<size_t>& g : groups) {
      if (!options.share_batch) break;
      const ExtractOptions lead = extract_options(settings[g.front()], common_options(options));
      if (batch_share_mismatch(lead, o).empty()) {
        g.push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({i});
  }
  return groups;
}

std::vector<std::vector<size_t>> batch_groups(const std::vector<Setting>& planned,
                                              const std::vector<size_t>& among,
                                              const ExperimentOptions& options) {
  std::vector<Setting> some;
  for (size_t i : among) some.push_back(planned.at(i));
  std::vector<std::vector<size_t>> groups = batch_groups(some, options);
  for (std::vector<size_t>& g : groups)
    for (size_t& k : g) k = among[k];
  return groups;
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

}  // namespace ipg
