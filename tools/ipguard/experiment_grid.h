// `ipguard experiment`'s settings from its options: the presets (quick: sized for the main
// job on 2 CPU cores; full: the paper's budgets, for a GPU), the --grid text
// ("ipguard:k=0.1,1,3;cwl2:k=0,1,10:iters=200;fgsm:eps=0.03,0.1;igsm;random"), --modes
// and --converged, parsed into the library's typed settings (fingerprint/experiment.h).
#pragma once

#include <string>
#include <vector>

#include "fingerprint/experiment.h"

namespace ipg::cli {

// One method's grid: its parameter values and its budget.
struct MethodGrid {
  Method method = Method::IPGuard;
  std::vector<double> values;  // k or eps; {0} for random
  MethodBudget budget;
};

struct Preset {
  std::string name;
  std::vector<MethodGrid> grids;
  int64_t n = 100;
  std::vector<Mode> modes;
  std::vector<Convergence> convergence;
};

// "quick" or "full"; UsageError otherwise.
Preset preset(const std::string& name);

// --grid: methods separated by ';' or white space, each "METHOD[:KEY=V[,V...]]...", keys k (ipguard, cwl2),
// eps (fgsm, igsm), iters, lr, steps (cwl2 binary steps), c0, alpha; what a method does not
// name comes from `defaults` (the preset's grid of that method). UsageError naming the
// problem on bad text.
std::vector<MethodGrid> parse_grid(const std::string& text, const std::vector<MethodGrid>& defaults);
// --methods: the preset's grids of these methods, in the order given.
std::vector<MethodGrid> pick_methods(const std::string& list, const std::vector<MethodGrid>& defaults);
// --modes: "all" or a list of train/least-likely, ..., TL, TR, RL, RR.
std::vector<Mode> parse_modes(const std::string& text);
// --converged: paper | until | both.
std::vector<Convergence> parse_convergence(const std::string& text);

// Every setting: methods in grid order, then convergence, mode, parameter value.
std::vector<Setting> expand(const std::vector<MethodGrid>& grids, const std::vector<Mode>& modes,
                            const std::vector<Convergence>& convergence);

// The grid as --grid text (for --help and the report).
std::string grid_text(const std::vector<MethodGrid>& grids);

}  // namespace ipg::cli
