// SVG line charts by hand (report_svg.h): a fixed frame, gridlines every 0.2 of the y range,
// the series as polylines with a legend beside the plot.
#include "fingerprint/report_svg.h"
#include "engine/number_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace ipg {

std::string xml_escape(const std::string& s) {
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

namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

}  // namespace

std::string line_chart_svg(const LineChart& c) {
  const double left = 52, top = 30, pw = 300, ph = 180, legend_w = 170;
  const double width = left + pw + 20 + legend_w, height = top + ph + 50;
  const double x0 = c.x.empty() ? 0 : c.x.front(), x1 = c.x.empty() ? 1 : c.x.back();
  // Points kept off the frame's sides by a margin, so that end markers stay visible.
  const double margin = c.shade.empty() ? 12 : 0;
  auto X = [&](double x) {
    return left + margin + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (pw - 2 * margin);
  };
  auto Y = [&](double y) {
    const double t = (std::min(c.y_max, std::max(c.y_min, y)) - c.y_min) / (c.y_max - c.y_min);
    return top + ph * (1 - t);
  };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">";
  s << "<title>" << xml_escape(c.title) << "</title>";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"></rect>";
  s << "<text x=\"" << left << "\" y=\"18\" font-size=\"13\">" << xml_escape(c.title) << "</text>";
  for (int i = 0; i <= 5; ++i) {
    const double v = c.y_min + (c.y_max - c.y_min) * i / 5.0;
    s << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << num(Y(v)) << "\" y2=\""
      << num(Y(v)) << "\" stroke=\"#ddd\"></line>";
    s << "<text x=\"" << left - 6 << "\" y=\"" << num(Y(v) + 4) << "\" text-anchor=\"end\">"
      << number_text(std::round(v * 100) / 100) << "</text>";
  }
  if (!c.shade.empty()) {
    s << "<polygon fill=\"#cfe3f7\" points=\"" << num(X(x0)) << "," << num(Y(c.y_min));
    for (size_t i = 0; i < c.x.size() && i < c.shade.size(); ++i)
      s << " " << num(X(c.x[i])) << "," << num(Y(c.shade[i]));
    s << " " << num(X(x1)) << "," << num(Y(c.y_min)) << "\"></polygon>";
  }
  for (size_t i = 0; i < c.x.size() && i < c.x_ticks.size(); ++i) {
    if (c.x_ticks[i].empty()) continue;
    s << "<text x=\"" << num(X(c.x[i])) << "\" y=\"" << num(top + ph + 15)
      << "\" text-anchor=\"middle\">" << xml_escape(c.x_ticks[i]) << "</text>";
  }
  s << "<text x=\"" << num(left + pw / 2) << "\" y=\"" << num(top + ph + 35)
    << "\" text-anchor=\"middle\">" << xml_escape(c.x_label) << "</text>";
  s << "<text x=\"12\" y=\"" << num(top + ph / 2) << "\" transform=\"rotate(-90 12 "
    << num(top + ph / 2) << ")\" text-anchor=\"middle\">" << xml_escape(c.y_label) << "</text>";
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"black\"></rect>";
  for (size_t k = 0; k < c.series.size(); ++k) {
    const ChartSeries& se = c.series[k];
    std::string pts;
    auto flush = [&]() {
      if (pts.empty()) return;
      s << "<polyline fill=\"none\" stroke=\"" << se.color << "\" stroke-width=\"2\""
        << (se.dashed ? " stroke-dasharray=\"5,3\"" : "") << " points=\"" << pts << "\"></polyline>";
      pts.clear();
    };
    for (size_t i = 0; i < c.x.size() && i < se.y.size(); ++i) {
      if (std::isnan(se.y[i])) {
        flush();
        continue;
      }
      if (!pts.empty()) pts += " ";
      pts += num(X(c.x[i])) + "," + num(Y(se.y[i]));
      s << "<circle cx=\"" << num(X(c.x[i])) << "\" cy=\"" << num(Y(se.y[i]))
        << "\" r=\"2.5\" fill=\"" << se.color << "\"><title>" << xml_escape(se.name) << ": "
        << number_text(se.y[i]) << "</title></circle>";
    }
    flush();
    const double ly = top + 10 + 16 * static_cast<double>(k);
    s << "<line x1=\"" << left + pw + 16 << "\" x2=\"" << left + pw + 40 << "\" y1=\"" << num(ly)
      << "\" y2=\"" << num(ly) << "\" stroke=\"" << se.color << "\" stroke-width=\"2\""
      << (se.dashed ? " stroke-dasharray=\"5,3\"" : "") << "></line>";
    s << "<text x=\"" << left + pw + 46 << "\" y=\"" << num(ly + 4) << "\">" << xml_escape(se.name)
      << "</text>";
  }
  s << "</svg>";
  return s.str();
}

}  // namespace ipg
