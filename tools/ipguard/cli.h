// Shared pieces of the ipguard subcommands: global options, the runner table, exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <limits>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace ipg::cli {

// Exit codes: 0 success, 1 runtime failure (bad file, CUDA error...), 2 usage error.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// A usage error (bad option value, options that conflict, an output that would overwrite
// an input): main prints it and exits with kExitUsage. Thrown by our validators while
// CLI11 parses as well as by runners before their work starts; a CLI::ParseError that is
// not CLI11's ValidationError, so CLI11 lets it through unprefixed and app.exit() prints it
// as it is.
class UsageError : public CLI::ParseError {
 public:
  explicit UsageError(const std::string& message) : CLI::ParseError(message, kExitUsage) {}
};

struct GlobalOptions {
  std::string device = "auto";
  int threads = 0;  // 0: the idle cores (ipg::set_threads)
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
// train (tools/ipguard/train_command.cpp) and postprocess (postprocess_command.cpp),
// registered by add_model_commands.
void add_train(CLI::App& app, const GlobalOptions& g, Runners& runners);
void add_postprocess(CLI::App& app, const GlobalOptions& g, Runners& runners);
void add_convert(CLI::App& app, const GlobalOptions& g, Runners& runners);  // Keras import
// extract, verify.
void add_fingerprint_commands(CLI::App& app, const GlobalOptions& g, Runners& runners);
// experiment: methods x parameters over a zoo folder.
void add_experiment(CLI::App& app, const GlobalOptions& g, Runners& runners);
}  // namespace ipg::cli

#include "fingerprint/extract.h"
#include "models/forest.h"
#include "models/recipe.h"
#include "models/train.h"

namespace ipg {
struct Dataset;
}  // namespace ipg

namespace ipg::cli {
// `train --arch rf` (tools/ipguard/forest_commands.cpp): fits, reports and saves the forest
// of recipe r (models/recipe.h). The result line (or JSON) goes to `report`.
int train_forest(const GlobalOptions& g, const ModelRecipe& r, const Dataset& train_set,
                 const Dataset& test_set, const std::string& out, std::ostream& report);
// `info` on a forest file.
int forest_info(const GlobalOptions& g, const std::string& path);
// What `train` runs (tools/ipguard/train_command.cpp); postprocess fills it too. The
// work is models/recipe.h's; this adds the checks, the progress lines and the report.
struct TrainArgs {
  std::string arch, data = "fashion-mnist", out, init, augment = "auto";
  std::string init_flag = "--init";  // the option that named `init` (or `teacher`)
  TrainOptions opt;
  int64_t limit = 0;
  bool reinit_last = false;
  double prune_weights = 0, prune_filters = 0;
  ForestOptions forest;
  // An extraction (postprocess --attack distill:ARCH | label-only:ARCH): a fresh `arch`
  // network taught by the network in `teacher`.
  std::string teacher;
  std::optional<Extraction> extraction;
  float temperature = 4;
};
// Progress on stderr (unless --json), the result line (or JSON) on `report`.
int run_train(const GlobalOptions& g, const TrainArgs& ta, std::ostream& report);
// Options of `extract` that `experiment` shares (what every setting extracts with).
void add_extract_options(CLI::App* cmd, ExtractOptions& o);
// "1 epoch", "3 epochs": a count and its noun (given singular; plural by "s").
std::string counted(long long n, const std::string& noun);
// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& s);
// The whole of `text` as a number; std::invalid_argument "<what>: '<text>' is not a number".
double parse_number(const std::string& text, const std::string& what);

// Checks of option values while CLI11 parses (tools/ipguard/cli_parse.cpp). A bad value is a
// UsageError that names the option in one short line ("--n must be at least 1, not 0"),
// instead of CLI11's range text with 308-digit bounds.
struct Bounds {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;  // exclude the bound itself
  bool integer = false;                   // a whole number, within int64
  bool u64 = false;                       // integer: within uint64 instead (a seed)
  std::string note;                       // said after the bounds, e.g. "0: the idle cores"
};
// "" when `text` is a finite number within b; else the message, naming `name`.
std::string bounds_error(const std::string& name, const std::string& text, const Bounds& b);
CLI::Option* bounded(CLI::Option* o, const Bounds& b);
CLI::Option* at_least(CLI::Option* o, double min);  // a whole number >= min
CLI::Option* positive(CLI::Option* o);              // a real number > 0
// A comma-separated list of at least one number, each within b.
CLI::Option* each_number(CLI::Option* o, const Bounds& b);
// --data NAME[:PATH] of a known format (models/data/dataset.h) and --device auto|cpu|cuda[:N].
CLI::Option* data_spec(CLI::Option* o);
CLI::Option* device_spec(CLI::Option* o);
// What `train --arch` (and zoo's --negatives) accept: every network and rf; UsageError
// "<flag>: unknown architecture 'x' (lenet5, ..., rf)" otherwise.
void check_architecture(const std::string& flag, const std::string& arch);
// The values of --k and of --eps (and --alpha) that extraction accepts (validate() in
// fingerprint/extract.h); experiment checks its lists of them with these too.
Bounds k_bounds();
// [0, 1], both ends included: rates, fractions, accuracy losses.
Bounds unit_interval_bounds();
Bounds unit_step_bounds();
// Refuses the options among `names` that were given on cmd's command line, as not applying
// `why` ("to --method fgsm"): a user who writes `extract --method fgsm --k 5` believes the
// margin changed something, and a run that ignores it says nothing of the kind.
void refuse_given(const CLI::App* cmd, const std::vector<std::string>& names,
                  const std::string& why);
// zoo: a target's positive and negative suspects in a folder.
void add_zoo(CLI::App& app, const GlobalOptions& g, Runners& runners);
// serve: a model over the Open Inference Protocol (tools/ipguard/serve_command.cpp).
void add_serve(CLI::App& app, const GlobalOptions& g, Runners& runners);
// verify (tools/ipguard/verify_command.cpp), registered by add_fingerprint_commands.
void add_verify(CLI::App& app, const GlobalOptions& g, Runners& runners);

}  // namespace ipg::cli
