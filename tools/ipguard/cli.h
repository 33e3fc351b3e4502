// Shared pieces of the ipguard subcommands: global options, the runner table, exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>

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

namespace ipg {
struct Dataset;
struct ForestOptions;
}  // namespace ipg

namespace ipg::cli {
// `train --arch rf` (tools/ipguard/forest_commands.cpp): fits, reports and saves a forest.
int train_forest(const GlobalOptions& g, const ForestOptions& options, const std::string& data,
                 const Dataset& train_set, const Dataset& test_set, const std::string& out);
// `info` on a forest file.
int forest_info(const GlobalOptions& g, const std::string& path);
// Subcommands of the design whose implementation has not landed yet: listed in --help,
// and when run they say so and exit 1.
void add_planned(CLI::App& app);

}  // namespace ipg::cli
