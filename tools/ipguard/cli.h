// Shared pieces of the ipguard subcommands: global options, the runner table, exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace ipg::cli {

// Exit codes: 0 success, 1 runtime failure (bad file, CUDA error...), 2 usage error.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::string device = "auto";
  int threads = 0;  // 0: OpenMP's default (all cores)
  unsigned long long seed = 0;
  bool json = false;
};

// What runs after parsing when a subcommand was chosen; returns the exit code.
using Runner = std::function<int()>;
using Runners = std::map<const CLI::App*, Runner>;

// Each add_* registers one subcommand with its options and its runner.
void add_doctor(CLI::App& app, const GlobalOptions& g, Runners& runners);
// train, postprocess, eval, info.
void add_model_commands(CLI::App& app, const GlobalOptions& g, Runners& runners);
void add_convert(CLI::App& app, const GlobalOptions& g, Runners& runners);  // Keras import
// extract, verify.
void add_fingerprint_commands(CLI::App& app, const GlobalOptions& g, Runners& runners);
// experiment: methods x parameters over a zoo folder.
void add_experiment(CLI::App& app, const GlobalOptions& g, Runners& runners);
}  // namespace ipg::cli

#include "fingerprint/extract.h"
#include "models/forest.h"
#include "models/train.h"

namespace ipg {
struct Dataset;
}  // namespace ipg

namespace ipg::cli {
// `train --arch rf` (tools/ipguard/forest_commands.cpp): fits, reports and saves a forest.
// The result line (or JSON) goes to `report`.
int train_forest(const GlobalOptions& g, const ForestOptions& options, const std::string& data,
                 const Dataset& train_set, const Dataset& test_set, const std::string& out,
                 std::ostream& report);
// `info` on a forest file.
int forest_info(const GlobalOptions& g, const std::string& path);
// What `train` runs (tools/ipguard/model_commands.cpp); postprocess and zoo fill it too.
struct TrainArgs {
  std::string arch, data = "fashion-mnist", out, init, augment = "auto";
  TrainOptions opt;
  int64_t limit = 0;
  bool reinit_last = false;
  double prune_weights = 0, prune_filters = 0;
  ForestOptions forest;
};
// Progress on stderr (unless --json), the result line (or JSON) on `report`.
int run_train(const GlobalOptions& g, const TrainArgs& ta, std::ostream& report);
// Sets the options of a post-processing attack (ftll, ftal, rtll, rtal, wp:P, fp:C) on t;
// throws std::invalid_argument for an unknown name or a fraction outside (0, 1).
void apply_attack(TrainArgs& t, const std::string& attack);
// Options of `extract` that `experiment` shares (what every setting extracts with).
void add_extract_options(CLI::App* cmd, ExtractOptions& o);
// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& s);
// The whole of `text` as a number; std::invalid_argument "<what>: '<text>' is not a number".
double parse_number(const std::string& text, const std::string& what);
// zoo: a target's positive and negative suspects in a folder.
void add_zoo(CLI::App& app, const GlobalOptions& g, Runners& runners);

}  // namespace ipg::cli
