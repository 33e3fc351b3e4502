// An experiment's record: every parameter, the zoo, and each finished setting's metrics and
// matching rates; what results.json holds (experiment_folder.h). The file carries a
// "sha256" field: the SHA-256 of the compact dump (nlohmann dump(), no indent) of the
// object without that key, so that a changed byte is found when it is read back.
#pragma once

#include <string>
#include <vector>

#include "fingerprint/experiment.h"

namespace ipg {

constexpr const char* kResultsFormat = "ipguard-experiment-results";
constexpr int kResultsVersion = 1;

struct SuspectInfo {
  std::string file, family, sha256;
  SuspectGroup group = SuspectGroup::Positive;
};

struct ExperimentRecord {
  std::string version, commit;  // the ipguard build
  std::string device, data;     // --device as resolved, --data
  int threads = 0;              // OpenMP threads used
  ExperimentOptions options;
  std::string zoo_dir, zoo_identity, manifest_sha256;  // manifest_sha256 "" without one
  std::string target_file, target_sha256, target_arch;
  std::vector<SuspectInfo> suspects;  // the ones evaluated, zoo order
  std::vector<ZooProblem> problems;   // the ones left out, and why
  std::vector<ZooDuplicate> duplicates;
  std::vector<std::string> unlisted;
  std::vector<Setting> planned;        // the whole grid, in run order
  std::vector<SettingResult> results;  // the settings finished so far, in run order
  const SettingResult* find(const Setting& s) const;
};

// The record from a zoo and its loaded suspects (families), before any result.
ExperimentRecord new_record(const Zoo& zoo, const LoadedZoo& loaded);

// results.json's text (indented, "sha256" filled in) and back. parse_results throws
// std::runtime_error naming `where` for text that is not such a record, and for a
// checksum mismatch ("checksum mismatch (corrupted or modified)").
std::string results_text(const ExperimentRecord& r);
ExperimentRecord parse_results(const std::string& text, const std::string& where);

// One result as the JSON text results.json holds it, and back (std::runtime_error, or
// nlohmann's exceptions, on text that is not one): how a result travels between the
// processes of a distributed run (tools/ipguard/mpi_experiment.cpp).
std::string setting_result_text(const SettingResult& r);
SettingResult parse_setting_result(const std::string& text);

// Why `old` (read back from results.json) cannot be resumed by a run recorded as `now`:
// the first difference in the zoo, the suspects or the options that change results; ""
// when they agree. (The thread count is not compared: see resume_warning.)
std::string resume_mismatch(const ExperimentRecord& old, const ExperimentRecord& now);
// A note when the thread count differs (results may then differ in their last bits).
std::string resume_warning(const ExperimentRecord& old, const ExperimentRecord& now);

}  // namespace ipg
