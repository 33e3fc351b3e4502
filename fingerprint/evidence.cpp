// The evidence report's JSON, its checks and its folder (fingerprint/evidence.h).
#include "fingerprint/evidence.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/sha256.h"
#include "fingerprint/experiment_folder.h"
#include "fingerprint/experiment_results.h"

namespace ipg {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json json_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string meaning(double threshold) {
  std::ostringstream m;
  m << "The fingerprint's points lie near the target model's decision boundary, where "
       "independently trained models label differently (IPGuard, AsiaCCS 2021, section 4). A "
       "suspect whose matching rate (the fraction of points it labels as the target did) is at "
       "or above the threshold "
    << threshold
    << " is called a copy of the target (a post-processed copy keeps matching); below it, it "
       "is not.";
  return m.str();
}

std::string self_sha(json j) {
  j.erase("sha256");
  return sha256_hex(j.dump());
}

}  // namespace

void check_report_dir(const std::string& dir) {
  std::error_code ec;
  if (dir.empty()) throw std::invalid_argument("--report: an empty folder name");
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      throw std::invalid_argument("--report " + dir + ": exists and is not a folder");
    if (!fs::is_empty(dir, ec))
      throw std::invalid_argument("--report " + dir +
                                  ": the folder is not empty (a report never replaces files)");
    if (::access(dir.c_str(), W_OK) != 0)
      throw std::invalid_argument("--report " + dir + ": the folder is not writable");
    return;
  }
  fs::path parent = fs::path(dir).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec) || ::access(parent.c_str(), W_OK) != 0)
    throw std::invalid_argument("--report " + dir + ": cannot create it in " + parent.string());
}

EvidenceFpr evaluation_fpr(const std::string& results_json, const std::string& fingerprint_sha256,
                           double threshold) {
  std::error_code ec;
  if (std::filesystem::is_directory(results_json, ec))
    throw std::runtime_error("--evaluation " + results_json +
                             " is a folder; give its results.json (experiment's output)");
  std::ifstream f(results_json, std::ios::binary);
  if (!f) throw std::runtime_error("--evaluation " + results_json + ": cannot read it");
  std::stringstream text;
  text << f.rdbuf();
  const ExperimentRecord rec = parse_results(text.str(), "--evaluation " + results_json);
  for (const SettingResult& r : rec.results) {
    if (r.fingerprint_sha256 != fingerprint_sha256) continue;
    const std::vector<double> neg = r.rates(SuspectGroup::Negative);
    if (neg.empty())
      throw std::runtime_error("--evaluation " + results_json + ": setting " +
                               setting_label(r.setting) + " has no negatives");
    EvidenceFpr e;
    e.source = results_json;
    e.sha256 = sha256_hex(text.str());
    e.setting = setting_label(r.setting);
    e.negatives = int64_t(neg.size());
    for (double m : neg) e.at_or_above += m >= threshold;
    e.value = double(e.at_or_above) / double(e.negatives);
    return e;
  }
  throw std::runtime_error("--evaluation " + results_json +
                           ": no setting there has this fingerprint (sha256 " +
                           fingerprint_sha256.substr(0, 12) +
                           "...); pass a fingerprint that evaluation saved");
}

json evidence_json(const EvidenceInput& in) {
  const Fingerprint& fp = *in.fingerprint;
  const QueryLog& log = *in.log;
  const std::vector<int32_t> want = fp.labels.to_vector_i32();
  int64_t answered = 0, matches = 0;
  for (size_t i = 0; i < want.size() && i < log.answers.size(); ++i) {
    if (log.answers[i] < 0) continue;
    ++answered;
    matches += log.answers[i] == want[i];
  }
  json queries = json::array();
  for (const QueryRecord& q : log.queries)
    queries.push_back({{"first", q.first},
                       {"count", q.count},
                       {"attempt", q.attempt},
                       {"sent", q.sent},
                       {"answered", q.answered},
                       {"http_status", q.http_status ? json(q.http_status) : json(nullptr)},
                       {"ok", q.ok},
                       {"error", json_or_null(q.error)},
                       {"output", q.ok ? json{{"datatype", q.output_datatype}, {"shape", q.output_shape}}
                                       : json(nullptr)},
                       {"labels", q.labels}});
  const double rate = answered ? double(matches) / double(answered) : 0.0;
  const bool complete = in.complete && answered == fp.size();
  json fpr = nullptr;
  if (in.fpr)
    fpr = {{"value", in.fpr->value},
           {"source", in.fpr->source},
           {"source_sha256", json_or_null(in.fpr->sha256)},
           {"setting", json_or_null(in.fpr->setting)},
           {"negatives", in.fpr->negatives},
           {"negatives_at_or_above_threshold", in.fpr->at_or_above},
           {"meaning", "the fraction of independently trained (negative) models that reached the "
                       "threshold in that evaluation: how often this threshold calls an innocent "
                       "model a copy"}};
  json j{
      {"format", "ipguard-evidence"},
      {"version", 1},
      {"created", utc_timestamp_ms()},
      {"tool", {{"name", "ipguard"}, {"version", in.tool_version}}},
      {"complete", complete},
      {"error", json_or_null(in.error)},
      {"fingerprint",
       {{"file", in.fingerprint_file},
        {"sha256", in.fingerprint_sha256},
        {"points", fp.size()},
        {"provenance",
         {{"method", fp.method},
          {"params",
           {{"k", fp.params.k},
            {"lr", fp.params.lr},
            {"iters", fp.params.iters},
            {"eps", fp.params.eps},
            {"init", fp.params.init},
            {"target", fp.params.target}}},
          {"seed", fp.seed},
          {"model_sha256", json_or_null(fp.model_sha256)},
          {"arch", fp.arch},
          {"created", fp.created}}},
        {"labels", want}}},
      {"suspect",
       {{"kind", in.suspect_kind}, {"what", in.suspect}, {"sha256", json_or_null(in.suspect_sha256)}}},
      {"queries", queries},
      {"points_sent", log.points_sent},
      {"points_answered", answered},
      {"result",
       {{"points", fp.size()},
        {"answered", answered},
        {"matches", matches},
        {"matching_rate", answered ? json(rate) : json(nullptr)},
        {"threshold", in.threshold},
        {"copy", complete ? json(rate >= in.threshold) : json(nullptr)},
        {"meaning", meaning(in.threshold)}}},
      {"false_positive_rate", fpr}};
  j["sha256"] = self_sha(j);
  return j;
}

void check_evidence(const json& r) {
  if (!r.is_object() || r.value("format", "") != "ipguard-evidence")
    throw std::runtime_error("not an ipguard evidence report");
  if (!r.contains("sha256") || !r["sha256"].is_string() || r["sha256"] != self_sha(r))
    throw std::runtime_error("evidence report: checksum mismatch (corrupted or modified)");
  // The counts must follow from the listed answers: each ok query's labels against the
  // fingerprint's labels.
  const std::vector<int32_t> want = r.at("fingerprint").at("labels").get<std::vector<int32_t>>();
  std::vector<int32_t> got(want.size(), -1);
  for (const json& q : r.at("queries")) {
    if (!q.at("ok").get<bool>()) continue;
    const int64_t first = q.at("first"), count = q.at("count");
    const std::vector<int32_t> l = q.at("labels").get<std::vector<int32_t>>();
    if (first < 0 || count != int64_t(l.size()) || first + count > int64_t(want.size()))
      throw std::runtime_error("evidence report: a query's labels do not fit the points");
    for (int64_t i = 0; i < count; ++i) got[size_t(first + i)] = l[size_t(i)];
  }
  int64_t answered = 0, matches = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    answered += got[i] >= 0;
    matches += got[i] >= 0 && got[i] == want[i];
  }
  const json& res = r.at("result");
  if (res.at("answered") != answered || res.at("matches") != matches)
    throw std::runtime_error("evidence report: the result's counts (" + res.at("matches").dump() +
                             "/" + res.at("answered").dump() + ") do not follow from the queries (" +
                             std::to_string(matches) + "/" + std::to_string(answered) + ")");
}

void write_evidence(const std::string& dir, const EvidenceInput& in) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("--report " + dir + ": cannot create it: " + ec.message());
  const json j = evidence_json(in);
  const std::string json_text = j.dump(2) + "\n", html = evidence_html(j);
  // Both or neither: the page first, then the record, whose presence says the report is
  // whole; a record that cannot be written takes the page with it (a full disk left the
  // record without its page).
  const std::string html_path = (fs::path(dir) / "evidence.html").string();
  write_file_atomically(html_path, html);
  try {
    write_file_atomically((fs::path(dir) / "evidence.json").string(), json_text);
  } catch (...) {
    fs::remove(html_path, ec);
    throw;
  }
}

}  // namespace ipg
