// results.json to and from the record (experiment_results.h).
#include "fingerprint/experiment_results.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/sha256.h"

namespace ipg {

using nlohmann::json;

const SettingResult* ExperimentRecord::find(const Setting& s) const {
  for (const SettingResult& r : results)
    if (r.setting == s) return &r;
  return nullptr;
}

ExperimentRecord new_record(const Zoo& zoo, const LoadedZoo& loaded) {
  ExperimentRecord r;
  r.zoo_dir = zoo.dir;
  r.zoo_identity = zoo.identity;
  r.manifest_sha256 = zoo.manifest_sha256;
  r.target_file = zoo.target.file;
  r.target_sha256 = zoo.target.sha256;
  r.target_arch = loaded.target ? loaded.target->arch() : "";
  for (const LoadedSuspect& s : loaded.suspects)
    r.suspects.push_back({s.model->file, s.family, s.model->sha256, s.model->group});
  r.problems = zoo.problems;
  r.duplicates = zoo.duplicates;
  r.unlisted = zoo.unlisted;
  return r;
}

namespace {

SuspectGroup parse_group(const std::string& g) {
  if (g == "positive") return SuspectGroup::Positive;
  if (g == "negative") return SuspectGroup::Negative;
  if (g == "adaptive") return SuspectGroup::Adaptive;
  throw std::invalid_argument("unknown group '" + g + "'");
}

json setting_json(const Setting& s) {
  return {{"id", setting_id(s)},
          {"label", setting_label(s)},
          {"method", method_name(s.method)},
          {"param_name", param_name(s.method)},
          {"param", s.param},
          {"mode", mode_suffix(s.mode)},
          {"init", s.mode.init == Init::Train ? "train" : "random"},
          {"target", s.mode.target == TargetLabel::LeastLikely ? "least-likely" : "random"},
          {"convergence", convergence_name(s.convergence)},
          {"iters", s.budget.iters},
          {"lr", s.budget.lr},
          {"binary_steps", s.budget.binary_steps},
          {"c0", s.budget.c0},
          {"alpha", s.budget.alpha}};
}

Setting setting_from(const json& j) {
  Setting s;
  s.method = parse_method(j.at("method").get<std::string>());
  s.param = j.at("param").get<double>();
  s.mode = parse_mode(j.at("mode").get<std::string>());
  const std::string c = j.at("convergence").get<std::string>();
  if (c == "paper")
    s.convergence = Convergence::Paper;
  else if (c == "until-converged")
    s.convergence = Convergence::UntilConverged;
  else
    throw std::invalid_argument("unknown convergence '" + c + "'");
  s.budget.iters = j.at("iters").get<int64_t>();
  s.budget.lr = j.at("lr").get<double>();
  s.budget.binary_steps = j.at("binary_steps").get<int64_t>();
  s.budget.c0 = j.at("c0").get<double>();
  s.budget.alpha = j.at("alpha").get<double>();
  return s;
}

json rates_json(const std::vector<SuspectRate>& v) {
  json a = json::array();
  for (const SuspectRate& r : v) a.push_back({{"file", r.file}, {"rate", r.rate}});
  return a;
}

std::vector<SuspectRate> rates_from(const json& a) {
  std::vector<SuspectRate> v;
  for (const json& e : a) v.push_back({e.at("file").get<std::string>(), e.at("rate").get<double>()});
  return v;
}

json result_json(const SettingResult& r) {
  json j = setting_json(r.setting);
  j["aruc"] = r.aruc;
  j["auc"] = r.auc;
  j["tpr_at_fpr5"] = r.tpr_at_fpr5;
  j["points"] = r.points;
  j["converged"] = r.converged;
  j["drawn"] = r.drawn;
  j["rounds"] = r.rounds;
  j["origin"] = r.origin;
  j["extract_seconds"] = r.extract_seconds;
  j["seconds_per_100"] = r.seconds_per_100;
  j["timed_in_earlier_run"] = r.resumed;
  j["threads"] = r.threads;
  j["shared_batch_with"] = r.shared;
  j["rates"] = {{"positive", rates_json(r.positive)},
                {"negative", rates_json(r.negative)},
                {"adaptive", rates_json(r.adaptive)}};
  j["fingerprint"] = r.fingerprint_file;
  j["fingerprint_sha256"] = r.fingerprint_sha256;
  return j;
}

SettingResult result_from(const json& j) {
  SettingResult r;
  r.setting = setting_from(j);
  r.aruc = j.at("aruc").get<double>();
  r.auc = j.at("auc").get<double>();
  r.tpr_at_fpr5 = j.at("tpr_at_fpr5").get<double>();
  r.points = j.at("points").get<int64_t>();
  r.converged = j.at("converged").get<int64_t>();
  r.drawn = j.at("drawn").get<int64_t>();
  r.rounds = j.at("rounds").get<std::vector<int64_t>>();
  r.origin = j.at("origin").get<std::vector<int64_t>>();
  r.extract_seconds = j.at("extract_seconds").get<double>();
  r.seconds_per_100 = j.at("seconds_per_100").get<double>();
  r.resumed = j.at("timed_in_earlier_run").get<bool>();
  r.threads = j.at("threads").get<int>();
  r.shared = j.value("shared_batch_with", int64_t{1});  // absent in records before shared batches
  const json& rates = j.at("rates");
  r.positive = rates_from(rates.at("positive"));
  r.negative = rates_from(rates.at("negative"));
  r.adaptive = rates_from(rates.at("adaptive"));
  r.fingerprint_file = j.at("fingerprint").get<std::string>();
  r.fingerprint_sha256 = j.at("fingerprint_sha256").get<std::string>();
  return r;
}

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
std::string from_nullable(const json& j) { return j.is_null() ? "" : j.get<std::string>(); }

json record_json(const ExperimentRecord& r) {
  json j;
  j["format"] = kResultsFormat;
  j["version"] = kResultsVersion;
  j["ipguard"] = {{"version", r.version}, {"commit", nullable(r.commit)}};
  j["parameters"] = {{"n", r.options.n},
                     {"batch", r.options.batch},
                     {"seed", r.options.seed},
                     {"check_every", r.options.check_every},
                     {"max_draws_factor", r.options.max_draws_factor},
                     {"predict_batch", r.options.predict_batch},
                     {"share_batch", r.options.share_batch},
                     {"aruc_r", 100},
                     {"tpr_max_fpr", 0.05},
                     {"threads", r.threads},
                     {"device", r.device},
                     {"data", r.data}};
  json suspects = json::array();
  for (const SuspectInfo& s : r.suspects)
    suspects.push_back(
        {{"file", s.file}, {"group", group_name(s.group)}, {"family", s.family}, {"sha256", s.sha256}});
  json problems = json::array();
  for (const ZooProblem& p : r.problems) problems.push_back({{"file", p.file}, {"reason", p.reason}});
  json dups = json::array();
  for (const ZooDuplicate& d : r.duplicates)
    dups.push_back({{"file", d.file}, {"duplicate_of", d.duplicate_of}, {"group", group_name(d.group)}});
  j["zoo"] = {{"dir", r.zoo_dir},
              {"identity_sha256", r.zoo_identity},
              {"manifest_sha256", nullable(r.manifest_sha256)},
              {"target", {{"file", r.target_file}, {"sha256", r.target_sha256}, {"arch", r.target_arch}}},
              {"suspects", suspects},
              {"left_out", problems},
              {"duplicates", dups},
              {"unlisted", r.unlisted}};
  json planned = json::array();
  for (const Setting& s : r.planned) planned.push_back(setting_json(s));
  j["planned"] = planned;
  json results = json::array();
  for (const SettingResult& s : r.results) results.push_back(result_json(s));
  j["settings"] = results;
  return j;
}

ExperimentRecord record_from(const json& j) {
  ExperimentRecord r;
  r.version = j.at("ipguard").at("version").get<std::string>();
  r.commit = from_nullable(j.at("ipguard").at("commit"));
  const json& p = j.at("parameters");
  r.options.n = p.at("n").get<int64_t>();
  r.options.batch = p.at("batch").get<int64_t>();
  r.options.seed = p.at("seed").get<uint64_t>();
  r.options.check_every = p.at("check_every").get<int64_t>();
  r.options.max_draws_factor = p.at("max_draws_factor").get<int64_t>();
  r.options.predict_batch = p.at("predict_batch").get<int>();
  r.options.share_batch = p.value("share_batch", false);
  r.threads = p.at("threads").get<int>();
  r.device = p.at("device").get<std::string>();
  r.data = p.at("data").get<std::string>();
  const json& z = j.at("zoo");
  r.zoo_dir = z.at("dir").get<std::string>();
  r.zoo_identity = z.at("identity_sha256").get<std::string>();
  r.manifest_sha256 = from_nullable(z.at("manifest_sha256"));
  r.target_file = z.at("target").at("file").get<std::string>();
  r.target_sha256 = z.at("target").at("sha256").get<std::string>();
  r.target_arch = z.at("target").at("arch").get<std::string>();
  for (const json& s : z.at("suspects"))
    r.suspects.push_back({s.at("file").get<std::string>(), s.at("family").get<std::string>(),
                          s.at("sha256").get<std::string>(),
                          parse_group(s.at("group").get<std::string>())});
  for (const json& q : z.at("left_out"))
    r.problems.push_back({q.at("file").get<std::string>(), q.at("reason").get<std::string>()});
  for (const json& d : z.at("duplicates"))
    r.duplicates.push_back({d.at("file").get<std::string>(), d.at("duplicate_of").get<std::string>(),
                            parse_group(d.at("group").get<std::string>())});
  r.unlisted = z.at("unlisted").get<std::vector<std::string>>();
  for (const json& s : j.at("planned")) r.planned.push_back(setting_from(s));
  for (const json& s : j.at("settings")) r.results.push_back(result_from(s));
  return r;
}

}  // namespace

std::string setting_result_text(const SettingResult& r) { return result_json(r).dump(); }

SettingResult parse_setting_result(const std::string& text) {
  return result_from(json::parse(text));
}

std::string results_text(const ExperimentRecord& r) {
  json j = record_json(r);
  j["sha256"] = sha256_hex(j.dump());
  return j.dump(2) + "\n";
}

ExperimentRecord parse_results(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(where + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != kResultsFormat)
    throw std::runtime_error(where + ": not an ipguard experiment results file");
  if (!j.contains("sha256") || !j["sha256"].is_string())
    throw std::runtime_error(where + ": no sha256 field");
  const std::string listed = j["sha256"].get<std::string>();
  json body = j;
  body.erase("sha256");
  if (sha256_hex(body.dump()) != listed)
    throw std::runtime_error(where + ": checksum mismatch (corrupted or modified)");
  if (j["version"] != kResultsVersion)
    throw std::runtime_error(where + ": unsupported version (this reader knows " +
                             std::to_string(kResultsVersion) + ")");
  try {
    return record_from(body);
  } catch (const std::exception& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
}

std::string resume_mismatch(const ExperimentRecord& old, const ExperimentRecord& now) {
  auto differs = [](const std::string& what, const std::string& a, const std::string& b) {
    return what + " (" + a + " then, " + b + " now)";
  };
  if (old.zoo_identity != now.zoo_identity)
    return "the zoo's files (" + old.zoo_dir + " then, " + now.zoo_dir + " now)";
  std::string a, b;
  for (const SuspectInfo& s : old.suspects) a += s.file + " ";
  for (const SuspectInfo& s : now.suspects) b += s.file + " ";
  if (a != b) return differs("the suspects evaluated", a, b);
  if (old.options.n != now.options.n)
    return differs("--n", std::to_string(old.options.n), std::to_string(now.options.n));
  if (old.options.seed != now.options.seed)
    return differs("--seed", std::to_string(old.options.seed), std::to_string(now.options.seed));
  if (old.options.max_draws_factor != now.options.max_draws_factor)
    return differs("--max-draws", std::to_string(old.options.max_draws_factor),
                   std::to_string(now.options.max_draws_factor));
  if (old.options.check_every != now.options.check_every)
    return differs("the flag-check interval", std::to_string(old.options.check_every),
                   std::to_string(now.options.check_every));
  if (old.device != now.device) return differs("--device", old.device, now.device);
  if (old.data != now.data) return differs("--data", old.data, now.data);
  return "";
}

std::string resume_warning(const ExperimentRecord& old, const ExperimentRecord& now) {
  if (old.threads == now.threads) return "";
  return "the earlier run used " + std::to_string(old.threads) + " threads, this one " +
         std::to_string(now.threads) +
         ": settings redone now may differ from an uninterrupted run in their last bits "
         "(--threads fixes the count)";
}

}  // namespace ipg
