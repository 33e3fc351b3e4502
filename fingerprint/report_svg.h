// Self-contained SVG line charts for the experiment report (no library, no external
// resources): ARUC against a method's parameter with one line per mode (the paper's
// Figures 3-6), and robustness / uniqueness against the matching-rate threshold with the
// area ARUC measures shaded (Figure 2).
#pragma once

#include <string>
#include <vector>

namespace ipg {

struct ChartSeries {
  std::string name, color;
  bool dashed = false;
  std::vector<double> y;  // one per x; NaN: no point there (the line breaks)
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<double> x;             // positions, ascending
  std::vector<std::string> x_ticks;  // a label per position ("" for none)
  std::vector<ChartSeries> series;
  std::vector<double> shade;  // optional: an area from 0 up to these values, per x
  double y_min = 0, y_max = 1;
};

std::string line_chart_svg(const LineChart& c);

// Text for XML/HTML: & < > " escaped.
std::string xml_escape(const std::string& s);

}  // namespace ipg
