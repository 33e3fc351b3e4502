// An experiment's record and its results folder (`ipguard experiment --out DIR`):
//   DIR/results.json            every parameter, the zoo, and each finished setting's
//                               metrics and matching rates; written after every setting
//                               (temporary name + rename) with a "sha256" field: the
//                               SHA-256 of the compact dump (nlohmann dump(), no indent) of
//                               the object without that key, so that a changed byte is
//                               found when it is read back
//   DIR/fingerprints/<id>.h5    each setting's fingerprint (fingerprint_file.h, sealed)
//   DIR/report.html             the tables and figures (experiment_report.h)
// Resuming reads results.json back: a setting recorded there whose fingerprint file is
// intact (loads, and has the recorded sha256) is not redone.
#pragma once

#include <optional>
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

// Why `old` (read back from results.json) cannot be resumed by a run recorded as `now`:
// the first difference in the zoo, the suspects or the options that change results; ""
// when they agree. (The thread count is not compared: see resume_warning.)
std::string resume_mismatch(const ExperimentRecord& old, const ExperimentRecord& now);
// A note when the thread count differs (results may then differ in their last bits).
std::string resume_warning(const ExperimentRecord& old, const ExperimentRecord& now);

// The results folder. open() checks `dir` before any work: a missing or empty folder is
// created; a folder holding results.json is an earlier run's (resumed with `resume`,
// refused without); any other non-empty folder or a file is refused. Refusals throw
// std::invalid_argument naming the folder.
class ResultsFolder {
 public:
  static ResultsFolder open(const std::string& dir, bool resume);
  const std::string& dir() const { return dir_; }
  std::string results_path() const;
  // The earlier run's record (resume of a folder that has one), checksum checked.
  const std::optional<ExperimentRecord>& previous() const { return previous_; }
  // A finished result of the earlier run for `s` whose fingerprint file is intact.
  std::optional<SettingResult> reusable(const Setting& s) const;
  // Saves the fingerprint as fingerprints/<id>.h5 and sets the result's file fields.
  void save_fingerprint_of(SettingResult& r, const Fingerprint& fp) const;
  // Writes results.json (temporary name + rename).
  void write(const ExperimentRecord& r) const;
  // Writes any file of the folder (report.html) the same way.
  void write_file(const std::string& name, const std::string& text) const;
  // Deletes fingerprint files no result of `r` refers to (settings of an earlier run that
  // this run's grid no longer has); returns their names.
  std::vector<std::string> remove_stale_fingerprints(const ExperimentRecord& r) const;

 private:
  std::string dir_;
  std::optional<ExperimentRecord> previous_;
};

// Runs rec.planned with rec.options (run_experiment) and records each result in
// rec.results as it finishes. With a folder: settings its earlier run finished are reused,
// each new fingerprint is saved, results.json is rewritten after every setting, and at the
// end fingerprint files of settings no longer planned are removed (their names returned).
std::vector<std::string> run_recorded(ExperimentRecord& rec, LoadedZoo& zoo,
                                      const Tensor* train_images, Device device,
                                      const ResultsFolder* folder,
                                      const std::function<void(const ExperimentProgress&)>& progress = {});

// Writes `text` to `path` through a temporary name in the same folder and a rename.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace ipg
