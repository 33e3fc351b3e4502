// A zoo's models made apart from build_zoo, by other processes (tools/ipguard/mpi_zoo.cpp
// shares them over MPI ranks): the models the plan may make, in build_zoo's order, and a
// maker that writes the very file build_zoo would write for one of them. Such files go into
// a staging folder under their command's name (staged_model_path); build_zoo, given that
// folder (ZooOptions::staged), takes them as made and decides everything else as it does
// alone: the sweeps' stops, duplicates, the manifest. Same files, same manifest.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/zoo.h"

namespace ipg {

struct ZooWork {
  std::string file;  // relative to the zoo folder
  std::string description;
  std::string command;  // the model's single equivalent command (the manifest's)
  std::string sweep;    // "wp" or "fp" for a value of a sweep; "" otherwise
  std::optional<double> param;
  // Resuming (ZooOptions::resume): what the old manifest already holds for this model with
  // the same command, so that it need not be made again: its test accuracy (a kept model,
  // or the value that stopped a sweep); -1 when it must be made.
  double known_accuracy = -1;
};

// Every model the plan may make, in build_zoo's order, every value of a sweep included
// (a sweep stops at the first value that loses too much; those after it are never made).
// With o.resume, reads the old manifest in o.out for known_accuracy.
std::vector<ZooWork> zoo_work(const ZooPlan& plan, const ZooOptions& o);

// Where a staging folder keeps the model made by `command`: named by a digest of the
// command without its device and thread count (as --resume matches commands).
std::string staged_model_path(const std::string& dir, const std::string& command);

// Whether the sweep value work[i] can be left unmade because an earlier value of its sweep
// is known (accuracy[j] >= 0, else work[j].known_accuracy) to lose more than the limit.
bool sweep_stopped_before(const std::vector<ZooWork>& work, const std::vector<double>& accuracy,
                          size_t i, double target_accuracy, double max_loss);

// Makes work items the way build_zoo does (same recipes and seeds: same bits for the same
// thread count). The data are loaded once, on first use. Never writes into o.out.
class ZooMaker {
 public:
  ZooMaker(const ZooPlan& plan, const ZooOptions& o);
  ~ZooMaker();
  ZooMaker(const ZooMaker&) = delete;
  ZooMaker& operator=(const ZooMaker&) = delete;

  size_t size() const;
  // The target's test accuracy: the sweeps' reference.
  double target_accuracy();
  // Makes item i and saves it to `path` (sealed, atomically); returns its test accuracy.
  double make(size_t i, const std::string& path);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace ipg
