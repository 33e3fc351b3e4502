// An experiment's results folder (`ipguard experiment --out DIR`):
//   DIR/results.json            the record (experiment_results.h), written before the
//                               first setting and rewritten after every setting through
//                               a temporary name and a rename
//   DIR/fingerprints/<id>.h5    each setting's fingerprint (fingerprint_file.h, sealed)
//   DIR/report.html             the tables and figures (experiment_report.h)
// Resuming reads results.json back (its checksum checked): a setting recorded there whose
// fingerprint file is intact (loads, and has the recorded sha256) is not redone.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/atomic_file.h"  // write_file_atomically, used with the folder
#include "engine/folder_lock.h"
#include "fingerprint/experiment_results.h"

namespace ipg {

// The results folder. open() checks `dir` before any work: a missing or empty folder is
// created; a folder holding results.json is an earlier run's (resumed with `resume`,
// refused without); any other non-empty folder or a file is refused, and so is a folder
// another process has open (engine/folder_lock.h: the lock is held while the ResultsFolder
// lives). Refusals throw std::invalid_argument naming the folder.
class ResultsFolder {
 public:
  static ResultsFolder open(const std::string& dir, bool resume);
  const std::string& dir() const { return dir_; }
  std::string results_path() const;
  // The earlier run's record (resume of a folder that has one), checksum checked.
  const std::optional<ExperimentRecord>& previous() const { return previous_; }
  // A finished result of the earlier run for `s` whose fingerprint file is intact.
  std::optional<SettingResult> reusable(const Setting& s) const;
  // The earlier run's results whose fingerprint file is missing or damaged, each
  // "SETTING: FILE: why": resuming redoes those settings (say so before the work starts).
  std::vector<std::string> damaged_fingerprints() const;
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
  std::string fingerprint_problem(const SettingResult& r) const;
  std::string dir_;
  std::optional<ExperimentRecord> previous_;
  FolderLock lock_;
};

// Runs rec.planned with rec.options (run_experiment) and records each result in
// rec.results as it finishes. With a folder: settings its earlier run finished are reused,
// each new fingerprint is saved, results.json is written first (a new folder) and rewritten
// after every setting, and at the end fingerprint files of settings no longer planned are
// removed (their names returned).
std::vector<std::string> run_recorded(ExperimentRecord& rec, LoadedZoo& zoo,
                                      const Tensor* train_images, Device device,
                                      const ResultsFolder* folder,
                                      const std::function<void(const ExperimentProgress&)>& progress = {});

}  // namespace ipg
