// The paper's tables from an experiment's record, as cells that both the text on stdout and
// the HTML report render (so both show the same numbers):
//   Table 4  the best ARUC of each method in each mode (and convergence policy), with AUC
//            and the TPR at FPR <= 5% of that same setting, and how many points converged
//   Table 5  every suspect's matching rate at each method's best setting (best ARUC over
//            its parameters and modes); negatives as a [min, max] range per family
//   Table 8  seconds per 100 fingerprint points at each method's best setting, timed on one
//            device with the thread count shown (a resumed setting's time comes from the
//            earlier run and is marked)
// Ties in ARUC go to the setting run first.
#pragma once

#include <string>
#include <vector>

#include "fingerprint/experiment_results.h"

namespace ipg {

struct TextTable {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // printed under the table
};

// The best result (highest ARUC, first on ties) among those matching, or null.
const SettingResult* best_result(const std::vector<SettingResult>& results, Method method,
                                 const Mode* mode, Convergence convergence);

// The convergence policies present in the results, paper's first.
std::vector<Convergence> policies_in(const std::vector<SettingResult>& results);

TextTable table4(const ExperimentRecord& r);
// One Table 5 per convergence policy present.
std::vector<TextTable> table5(const ExperimentRecord& r);
TextTable table8(const ExperimentRecord& r);
// Every setting: its parameters, ARUC, AUC, TPR, the positives' mean / min and the
// negatives' mean / max matching rates, points converged, seconds.
TextTable settings_table(const ExperimentRecord& r);

// Columns aligned with spaces, the title above, notes below.
std::string render_text(const TextTable& t);

// Number formats the tables use (the report and the tests read them back).
std::string fixed(double v, int decimals);

}  // namespace ipg
