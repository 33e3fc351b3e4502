// report.html of an experiment: one file readable offline (inline CSS, inline SVG charts,
// PNG images as data: URIs; nothing fetched). It holds the parameters, Tables 4, 5 and 8
// and the all-settings table (the same cells as the text on stdout, experiment_tables.h),
// ARUC against each method's parameter with one line per mode (the paper's Figures 3-6),
// the robustness and uniqueness curves of each method's best setting (Figure 2), a grid of
// start images beside the fingerprint points they became, and the zoo's suspects.
// Every element is closed (void elements written as <x/>), so an XML-minded reader parses it.
#pragma once

#include <string>
#include <vector>

#include "engine/tensor.h"
#include "fingerprint/experiment_results.h"

namespace ipg {

// Points of one setting for the image grid: starts and points float32 [m, C, H, W] in
// [0, 1] (CPU), and per point the label it started from (i), the target label (j) and the
// label the target gives the point.
struct ReportPoints {
  std::string caption;
  Tensor starts, points;
  std::vector<int32_t> source, target, labels;
  std::vector<uint8_t> converged;
};

// The image grid: each method's best setting (first convergence policy present), its first
// `count` points read back from the fingerprint files under `results_dir`, beside their
// starting images drawn again (start_images).
std::vector<ReportPoints> report_points(const ExperimentRecord& r, const std::string& results_dir,
                                        Network& target, const Tensor* train_images,
                                        int64_t count = 10);

// `notes`: lines shown under the parameters (e.g. why a budget was chosen).
std::string report_html(const ExperimentRecord& r, const std::vector<ReportPoints>& grid,
                        const std::vector<std::string>& notes);

}  // namespace ipg
