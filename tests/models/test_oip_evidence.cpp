// The evidence report of a verification (fingerprint/evidence.h): its counts follow from
// the answers it lists, it is checked when read back, an incomplete one gives no verdict,
// its page is self-contained and escapes what suspects choose, and its folder is never one
// with files in it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/sha256.h"
#include "fingerprint/evidence.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

Fingerprint small_fingerprint() {
  Fingerprint fp;
  fp.method = "ipguard";
  fp.params.k = 3;
  fp.seed = 7;
  fp.arch = "lenet5";
  fp.model_sha256 = std::string(64, 'a');
  fp.created = "2026-12-01T00:00:00Z";
  fp.points = Tensor::zeros({4, 1, 2, 2});
  fp.labels = Tensor::from_vector_i32({1, 2, 3, 4}, {4});
  return fp;
}

// Two batches of two points: the first answered {1, 0}, the second per `second`.
QueryLog two_batches(bool second_ok) {
  QueryLog log;
  log.suspect = "http://127.0.0.1:1/v2/models/m";
  log.answers = {1, 0, -1, -1};
  QueryRecord a;
  a.first = 0;
  a.count = 2;
  a.ok = true;
  a.http_status = 200;
  a.labels = {1, 0};
  a.sent = a.answered = "2026-12-01T00:00:01.000Z";
  log.queries.push_back(a);
  QueryRecord b = a;
  b.first = 2;
  b.ok = second_ok;
  b.labels = second_ok ? std::vector<int32_t>{3, 4} : std::vector<int32_t>{};
  b.http_status = second_ok ? 200 : 500;
  b.error = second_ok ? "" : "HTTP 500";
  log.queries.push_back(b);
  if (second_ok) log.answers = {1, 0, 3, 4};
  log.points_sent = 4;
  return log;
}

EvidenceInput input(const Fingerprint& fp, const QueryLog& log, bool complete) {
  EvidenceInput in;
  in.tool_version = "test";
  in.fingerprint_file = "fp.h5";
  in.fingerprint_sha256 = std::string(64, 'b');
  in.fingerprint = &fp;
  in.suspect_kind = "address";
  in.suspect = log.suspect;
  in.log = &log;
  in.complete = complete;
  in.error = complete ? "" : "HTTP 500";
  in.threshold = 0.5;
  return in;
}

TEST(Evidence, CountsFollowFromTheAnswersAndTamperingIsFound) {
  const Fingerprint fp = small_fingerprint();
  const QueryLog log = two_batches(true);
  nlohmann::json j = evidence_json(input(fp, log, true));
  EXPECT_TRUE(j["complete"].get<bool>());
  EXPECT_EQ(j["result"]["matches"], 3);  // 1, 3, 4 agree; point 1 answered 0, not 2
  EXPECT_EQ(j["result"]["answered"], 4);
  EXPECT_DOUBLE_EQ(j["result"]["matching_rate"].get<double>(), 0.75);
  EXPECT_EQ(j["result"]["copy"], true);
  EXPECT_EQ(j["fingerprint"]["provenance"]["seed"], 7);
  EXPECT_EQ(j["queries"].size(), 2u);
  EXPECT_NO_THROW(check_evidence(j));

  nlohmann::json changed = j;
  changed["result"]["matches"] = 4;
  EXPECT_THROW(check_evidence(changed), std::runtime_error);  // the checksum
  // A checksum recomputed over a changed count: the count itself is found wrong.
  changed.erase("sha256");
  changed["sha256"] = sha256_hex(changed.dump());
  try {
    check_evidence(changed);
    FAIL() << "a count that does not follow from the answers was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("do not follow from the queries"), std::string::npos)
        << e.what();
  }
  nlohmann::json relabeled = j;
  relabeled["queries"][1]["labels"] = {3, 3};
  EXPECT_THROW(check_evidence(relabeled), std::runtime_error);
}

TEST(Evidence, IncompleteGivesNoVerdict) {
  const Fingerprint fp = small_fingerprint();
  const QueryLog log = two_batches(false);
  const nlohmann::json j = evidence_json(input(fp, log, false));
  EXPECT_FALSE(j["complete"].get<bool>());
  EXPECT_TRUE(j["result"]["copy"].is_null());
  EXPECT_EQ(j["result"]["answered"], 2);
  EXPECT_EQ(j["result"]["matches"], 1);
  EXPECT_EQ(j["error"], "HTTP 500");
  EXPECT_NO_THROW(check_evidence(j));
  const std::string html = evidence_html(j);
  EXPECT_NE(html.find("INCOMPLETE"), std::string::npos);
  // A run that says complete but lacks answers is not called complete either.
  EXPECT_FALSE(evidence_json(input(fp, log, true))["complete"].get<bool>());
}

TEST(Evidence, PageIsSelfContainedAndEscaped) {
  const Fingerprint fp = small_fingerprint();
  QueryLog log = two_batches(true);
  EvidenceInput in = input(fp, log, true);
  in.suspect_kind = "command";
  in.suspect = "echo '<script>alert(1)</script>'";
  EvidenceFpr f;
  f.value = 0.25;
  f.source = "--negatives-fpr";
  in.fpr = f;
  const std::string html = evidence_html(evidence_json(in));
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  for (const char* external : {"src=", "<link", "@import", "url("})
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  EXPECT_NE(html.find("false-positive rate of this threshold"), std::string::npos);
}

TEST(Evidence, FolderMustBeNewOrEmptyAndFilesReadBack) {
  const fs::path dir = fs::temp_directory_path() / ("ipg-evidence-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EXPECT_NO_THROW(check_report_dir(dir.string()));  // missing: created when written
  EXPECT_THROW(check_report_dir((dir / "a" / "b").string()), std::invalid_argument);
  const Fingerprint fp = small_fingerprint();
  const QueryLog log = two_batches(true);
  write_evidence(dir.string(), input(fp, log, true));
  EXPECT_THROW(check_report_dir(dir.string()), std::invalid_argument);  // now has files
  EXPECT_THROW(check_report_dir((dir / "evidence.json").string()), std::invalid_argument);
  std::ifstream f(dir / "evidence.json");
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_NO_THROW(check_evidence(nlohmann::json::parse(text.str())));
  EXPECT_TRUE(fs::exists(dir / "evidence.html"));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += bool(e.path().filename().string().size());
  EXPECT_EQ(files, 2u);  // no temporary names left
  fs::remove_all(dir);
  fs::create_directory(dir);
  EXPECT_NO_THROW(check_report_dir(dir.string()));  // empty
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ipg
