// The evidence report of a verification (`ipguard verify --report DIR`): what a model owner
// hands over to show that a suspect labels the fingerprint like the target.
//
// DIR/evidence.json, format "ipguard-evidence" version 1:
//   created, tool {name, version}, complete (false: the verification was cut short; then
//   "error" says why and the result counts only the answers received),
//   fingerprint {file, sha256, points, provenance {method, params, seed, model_sha256, arch,
//   created} as the fingerprint file stores it, labels [n]},
//   suspect {kind "address" | "file" | "command", what, sha256 (files)},
//   queries [{first, count, attempt, sent, answered, http_status, ok, error, output
//   {datatype, shape}, labels}] (every request or batch in order, timestamps ISO 8601 UTC),
//   points_sent, points_answered,
//   result {points, answered, matches, matching_rate (of the answered points), threshold,
//   copy (null when incomplete), meaning},
//   false_positive_rate {value, source, ...} or null,
//   sha256: the SHA-256 of the compact dump (nlohmann dump()) of the object without it.
// DIR/evidence.html: the same for a reader, one self-contained page (no external assets).
// Both written under temporary names and renamed.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "fingerprint/fingerprint_file.h"
#include "models/remote_classifier.h"

namespace ipg {

struct EvidenceFpr {
  double value = 0;
  std::string source;     // "--negatives-fpr" or the evaluation file
  std::string sha256;     // of the evaluation file ("" for --negatives-fpr)
  std::string setting;    // the evaluation's setting that made this fingerprint
  int64_t negatives = 0;  // negatives evaluated (0 for --negatives-fpr)
  int64_t at_or_above = 0;
};

struct EvidenceInput {
  std::string tool_version;
  std::string fingerprint_file, fingerprint_sha256;
  const Fingerprint* fingerprint = nullptr;
  std::string suspect_kind;  // "address" | "file" | "command"
  std::string suspect;       // the address, file or command
  std::string suspect_sha256;
  const QueryLog* log = nullptr;
  bool complete = true;
  std::string error;  // why not complete
  double threshold = 0.5;
  std::optional<EvidenceFpr> fpr;
};

// The folder a report may go to: missing (its parent must exist) or an empty folder;
// std::invalid_argument "--report DIR: ..." otherwise. Checked before any query is made.
void check_report_dir(const std::string& dir);

// The false-positive rate of `threshold` on the negatives of an `ipguard experiment`
// results.json, for the setting whose saved fingerprint has `fingerprint_sha256`;
// std::runtime_error when the file is not such a record or has no such setting.
EvidenceFpr evaluation_fpr(const std::string& results_json, const std::string& fingerprint_sha256,
                           double threshold);

nlohmann::json evidence_json(const EvidenceInput& in);
// Checks a report read back: its own sha256 and the counts it states (matches against the
// labels it lists); std::runtime_error naming the problem.
void check_evidence(const nlohmann::json& report);
// The readable page of a report (fingerprint/evidence_html.cpp).
std::string evidence_html(const nlohmann::json& report);
// Creates `dir` when missing and writes evidence.json and evidence.html into it.
void write_evidence(const std::string& dir, const EvidenceInput& in);

}  // namespace ipg
