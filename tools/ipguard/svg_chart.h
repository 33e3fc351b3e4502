// A self-contained SVG bar chart of an experiment's ARUC per setting (one bar per method
// and parameter, grouped and colored by method), for `ipguard experiment --plot`.
#pragma once

#include <string>
#include <vector>

#include "fingerprint/experiment.h"

namespace ipg::cli {

std::string aruc_chart_svg(const std::vector<SettingResult>& results, const std::string& title);

}  // namespace ipg::cli
