// SVG by hand: a fixed layout (axis, gridlines at 0.2 steps, bars, labels), no library.
#include "tools/ipguard/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace ipg::cli {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

std::string aruc_chart_svg(const std::vector<SettingResult>& results, const std::string& title) {
  static const std::map<std::string, std::string> colors = {{"ipguard", "#1b6ac9"},
                                                            {"cwl2", "#d1495b"},
                                                            {"fgsm", "#edae49"},
                                                            {"igsm", "#66a182"},
                                                            {"random", "#8d8d8d"}};
  const int left = 60, top = 40, plot_h = 260, bar_w = 28, gap = 10, group_gap = 24;
  int width = left + 20;
  std::string prev;
  for (const auto& r : results) {
    if (!prev.empty() && r.setting.method != prev) width += group_gap;
    width += bar_w + gap;
    prev = r.setting.method;
  }
  width = std::max(width, 520);  // room for the title
  const int height = top + plot_h + 80;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << left << "\" y=\"20\" font-size=\"14\">" << escape(title) << "</text>\n";
  for (int i = 0; i <= 5; ++i) {  // gridlines and y labels
    const double v = i * 0.2;
    const double y = top + plot_h * (1 - v);
    s << "<line x1=\"" << left << "\" x2=\"" << width - 10 << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/>\n";
    s << "<text x=\"" << left - 8 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << fmt(v)
      << "</text>\n";
  }
  s << "<text x=\"14\" y=\"" << top + plot_h / 2 << "\" transform=\"rotate(-90 14 "
    << top + plot_h / 2 << ")\" text-anchor=\"middle\">ARUC</text>\n";
  int x = left + 10;
  prev.clear();
  for (const auto& r : results) {
    if (!prev.empty() && r.setting.method != prev) x += group_gap;
    prev = r.setting.method;
    const double h = plot_h * std::max(0.0, std::min(1.0, r.aruc));
    const auto c = colors.find(r.setting.method);
    const std::string color = c == colors.end() ? "#444" : c->second;
    const std::string param = r.setting.method == "random" ? "" : fmt(r.setting.param);
    s << "<rect x=\"" << x << "\" y=\"" << top + plot_h - h << "\" width=\"" << bar_w
      << "\" height=\"" << h << "\" fill=\"" << color << "\"><title>" << escape(r.setting.method)
      << " " << param << ": ARUC " << fmt(r.aruc) << "</title></rect>\n";
    s << "<text x=\"" << x + bar_w / 2 << "\" y=\"" << top + plot_h - h - 4
      << "\" text-anchor=\"middle\" font-size=\"9\">" << fmt(std::round(r.aruc * 100) / 100)
      << "</text>\n";
    const int lx = x + bar_w / 2, ly = top + plot_h + 12;
    s << "<text x=\"" << lx << "\" y=\"" << ly << "\" text-anchor=\"end\" transform=\"rotate(-45 "
      << lx << " " << ly << ")\">" << escape(r.setting.method) << (param.empty() ? "" : " ")
      << escape(param) << "</text>\n";
    x += bar_w + gap;
  }
  s << "<line x1=\"" << left << "\" x2=\"" << width - 10 << "\" y1=\"" << top + plot_h << "\" y2=\""
    << top + plot_h << "\" stroke=\"black\"/>\n";
  s << "</svg>\n";
  return s.str();
}

}  // namespace ipg::cli
