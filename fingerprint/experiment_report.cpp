// report.html (experiment_report.h): HTML written by hand around the tables' cells, the
// SVG charts of report_svg.h and the PNG images of report_png.h.
#include "fingerprint/experiment_report.h"
#include "engine/number_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>

#include "fingerprint/experiment_tables.h"
#include "fingerprint/fingerprint_file.h"
#include "fingerprint/metrics.h"
#include "fingerprint/report_png.h"
#include "fingerprint/report_svg.h"

namespace ipg {

namespace {

const char* kModeColors[] = {"#1b6ac9", "#d1495b", "#66a182", "#edae49"};  // TL TR RL RR

std::string table_html(const TextTable& t, const std::string& id) {
  std::ostringstream s;
  s << "<h3>" << xml_escape(t.title) << "</h3>\n<table id=\"" << id << "\"><thead><tr>";
  for (const std::string& h : t.header) s << "<th>" << xml_escape(h) << "</th>";
  s << "</tr></thead><tbody>\n";
  for (const auto& row : t.rows) {
    s << "<tr>";
    for (const std::string& c : row) s << "<td>" << xml_escape(c) << "</td>";
    s << "</tr>\n";
  }
  s << "</tbody></table>\n";
  for (const std::string& n : t.notes) s << "<p class=\"note\">" << xml_escape(n) << "</p>\n";
  return s.str();
}

// ARUC against the method's parameter, a line per mode (dashed: until converged).
std::string parameter_chart(const ExperimentRecord& r, Method m) {
  std::set<double> values;
  for (const SettingResult& s : r.results)
    if (s.setting.method == m) values.insert(s.setting.param);
  if (values.empty()) return "";
  LineChart c;
  c.title = std::string(method_name(m)) + ": ARUC against " + param_name(m);
  c.x_label = param_name(m);
  c.y_label = "ARUC";
  const std::vector<double> v(values.begin(), values.end());
  for (size_t i = 0; i < v.size(); ++i) {  // evenly spaced: grids span decades and include 0
    c.x.push_back(static_cast<double>(i));
    c.x_ticks.push_back(number_text(v[i]));
  }
  if (v.size() == 1) {
    c.x = {0, 1, 2};
    c.x_ticks = {"", number_text(v[0]), ""};
  }
  for (Convergence conv : policies_in(r.results))
    for (size_t k = 0; k < 4; ++k) {
      const Mode& mode = kAllModes[k];
      ChartSeries se;
      se.name = mode_suffix(mode) + (conv == Convergence::Paper ? "" : " until-converged");
      se.color = kModeColors[k];
      se.dashed = conv == Convergence::UntilConverged;
      se.y.assign(c.x.size(), std::numeric_limits<double>::quiet_NaN());
      bool any = false;
      for (const SettingResult& s : r.results) {
        if (s.setting.method != m || !(s.setting.mode == mode) || s.setting.convergence != conv)
          continue;
        const size_t i = static_cast<size_t>(
            std::lower_bound(v.begin(), v.end(), s.setting.param) - v.begin());
        se.y[v.size() == 1 ? 1 : i] = s.aruc;
        any = true;
      }
      if (any) c.series.push_back(se);
    }
  return line_chart_svg(c);
}

std::string ru_chart(const SettingResult& s) {
  const RobustnessUniquenessCurve curve =
      robustness_uniqueness_curve(s.rates(SuspectGroup::Positive), s.rates(SuspectGroup::Negative));
  LineChart c;
  c.title = setting_label(s.setting) + ": ARUC " + fixed(s.aruc, 3);
  c.x_label = "matching-rate threshold tau";
  c.y_label = "fraction";
  c.x = curve.tau;
  for (double t : curve.tau) {
    const int pct = static_cast<int>(std::lround(t * 100));
    c.x_ticks.push_back(pct % 20 == 0 ? number_text(t) : "");
  }
  c.series.push_back({"robustness R(tau)", "#1b6ac9", false, curve.robustness});
  c.series.push_back({"uniqueness U(tau)", "#d1495b", true, curve.uniqueness});
  for (size_t i = 0; i < curve.tau.size(); ++i)
    c.shade.push_back(std::min(curve.robustness[i], curve.uniqueness[i]));
  return line_chart_svg(c);
}

std::string img(const Tensor& x, int64_t row, const std::string& alt) {
  const int ch = static_cast<int>(x.dim(1)), h = static_cast<int>(x.dim(2)),
            w = static_cast<int>(x.dim(3));
  const int scale = std::max(1, 64 / std::max(h, w));
  const std::string png =
      encode_png_chw(x.data() + row * ch * h * w, ch == 3 ? 3 : 1, h, w, scale);
  return "<img alt=\"" + xml_escape(alt) + "\" src=\"data:image/png;base64," + base64(png) + "\"/>";
}

}  // namespace

std::vector<ReportPoints> report_points(const ExperimentRecord& r, const std::string& results_dir,
                                        Network& target, const Tensor* train_images,
                                        int64_t count) {
  std::vector<ReportPoints> out;
  const std::vector<Convergence> policies = policies_in(r.results);
  if (policies.empty()) return out;
  for (Method m : kAllMethods) {
    const SettingResult* b = best_result(r.results, m, nullptr, policies.front());
    if (!b) continue;
    const Fingerprint fp = load_fingerprint(results_dir + "/" + b->fingerprint_file);
    const int64_t k = std::min<int64_t>(count, fp.size());
    ReportPoints p;
    p.caption = setting_label(b->setting) + " (best ARUC " + fixed(b->aruc, 3) + ")";
    p.points = fp.points.narrow0(0, k).clone();
    p.starts = start_images(target, *b, r.options, train_images, k);
    const std::vector<int32_t> labels = fp.labels.to_vector_i32();
    for (int64_t i = 0; i < k; ++i) {
      p.source.push_back(fp.source[i]);
      p.target.push_back(fp.target[i]);
      p.labels.push_back(labels[i]);
      p.converged.push_back(fp.converged[i]);
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::string report_html(const ExperimentRecord& r, const std::vector<ReportPoints>& grid,
                        const std::vector<std::string>& notes) {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
    << "<title>ipguard experiment: " << xml_escape(r.zoo_dir) << "</title>\n<style>"
    << "body{font-family:sans-serif;margin:2em;max-width:1200px}"
    << "table{border-collapse:collapse;margin:0.5em 0}"
    << "td,th{border:1px solid #bbb;padding:2px 8px;text-align:left;font-size:13px}"
    << "th{background:#eee}.note{color:#555;font-size:13px;margin:2px 0}"
    << ".figs svg{margin:4px}.points td{text-align:center}"
    << "</style></head><body>\n";
  s << "<h1>ipguard experiment</h1>\n<p>Zoo <code>" << xml_escape(r.zoo_dir) << "</code>, target <code>"
    << xml_escape(r.target_file) << "</code> (" << xml_escape(r.target_arch) << "); "
    << r.results.size() << " of " << r.planned.size() << " settings; ipguard "
    << xml_escape(r.version) << (r.commit.empty() ? "" : " (" + xml_escape(r.commit) + ")")
    << ".</p>\n";

  s << "<h2>Parameters</h2>\n<table id=\"parameters\"><tbody>\n";
  auto param = [&](const std::string& k, const std::string& v) {
    s << "<tr><th>" << xml_escape(k) << "</th><td>" << xml_escape(v) << "</td></tr>\n";
  };
  param("points per fingerprint (n)", std::to_string(r.options.n));
  param("seed", std::to_string(r.options.seed));
  param("candidates per batch", r.options.batch == 0 ? "auto (100 on the CPU; what fits on a GPU)"
                                                    : std::to_string(r.options.batch));
  param("device, threads", r.device + ", " + std::to_string(r.threads));
  param("training data (init T)", r.data);
  param("settings sharing a batch", r.options.share_batch
                                        ? "yes (--share-batch: a first draw's time is divided "
                                          "among the settings of its batch)"
                                        : "no (each setting extracted alone)");
  param("until-converged cap", std::to_string(r.options.max_draws_factor) + " x n candidates");
  param("ARUC", "r = 100 thresholds; TPR at FPR <= 5%; AUC with ties counted 1/2");
  param("zoo manifest sha256", r.manifest_sha256.empty() ? "(no manifest)" : r.manifest_sha256);
  param("zoo identity sha256", r.zoo_identity);
  // Each key's values in the order the grid first runs them (parameters ascending, modes
  // TL, TR, RL, RR), keys in method order.
  std::vector<std::pair<std::string, std::vector<std::string>>> grids;
  auto add = [&grids](const std::string& key, const std::string& value) {
    auto it = std::find_if(grids.begin(), grids.end(), [&](const auto& e) { return e.first == key; });
    if (it == grids.end()) it = grids.insert(grids.end(), {key, {}});
    if (std::find(it->second.begin(), it->second.end(), value) == it->second.end())
      it->second.push_back(value);
  };
  for (const Setting& p : r.planned) {
    std::string budget;
    switch (p.method) {
      case Method::IPGuard:
        budget = "iters " + std::to_string(p.budget.iters) + ", lr " + number_text(p.budget.lr);
        break;
      case Method::CWL2:
        budget = std::to_string(p.budget.binary_steps) + " binary steps x " +
                 std::to_string(p.budget.iters) + " iters, lr " + number_text(p.budget.lr) + ", c0 " +
                 number_text(p.budget.c0);
        break;
      case Method::IGSM:
        budget = "iters " + std::to_string(p.budget.iters) + ", alpha " + number_text(p.budget.alpha);
        break;
      case Method::FGSM:
        budget = "one step";
        break;
      case Method::Random:
        budget = "the initial points";
        break;
    }
    add("modes", mode_suffix(p.mode));
    add("convergence", convergence_name(p.convergence));
    const std::string key = method_name(p.method);
    if (p.method != Method::Random) add(key + " " + param_name(p.method), number_text(p.param));
    add(key + " budget", budget);
  }
  for (const auto& [k, vals] : grids) {
    std::string v;
    for (const std::string& x : vals) v += (v.empty() ? "" : ", ") + x;
    param(k, v);
  }
  s << "</tbody></table>\n";
  for (const std::string& n : notes) s << "<p class=\"note\">" << xml_escape(n) << "</p>\n";

  s << "<h2>Tables</h2>\n" << table_html(table4(r), "table4");
  const auto t5 = table5(r);
  for (size_t i = 0; i < t5.size(); ++i) s << table_html(t5[i], "table5-" + std::to_string(i));
  s << table_html(table8(r), "table8") << table_html(settings_table(r), "settings");

  s << "<h2>ARUC against each method's parameter (Figures 3-6)</h2>\n<div class=\"figs\">\n";
  for (Method m : kAllMethods)
    if (m != Method::Random) s << parameter_chart(r, m) << "\n";
  s << "</div>\n<h2>Robustness and uniqueness at each method's best setting (Figure 2)</h2>\n"
    << "<p class=\"note\">R(tau): positives with matching rate &gt;= tau; U(tau): negatives "
       "below tau; shaded: min(R, U), whose mean over tau = 0.01 .. 1 is ARUC.</p>\n"
    << "<div class=\"figs\">\n";
  for (Convergence c : policies_in(r.results))
    for (Method m : kAllMethods)
      if (const SettingResult* b = best_result(r.results, m, nullptr, c)) s << ru_chart(*b) << "\n";
  s << "</div>\n";

  if (!grid.empty()) {
    s << "<h2>Start images and fingerprint points</h2>\n"
      << "<p class=\"note\">Each pair: the initial point (label i) and the fingerprint point it "
         "became (the label the target gives it; j the target label; * not converged).</p>\n";
    for (const ReportPoints& p : grid) {
      s << "<h3>" << xml_escape(p.caption) << "</h3>\n<table class=\"points\"><tbody><tr>";
      for (int64_t i = 0; i < p.points.dim(0); ++i)
        s << "<td>" << img(p.starts, i, "start " + std::to_string(i)) << "</td>";
      s << "</tr><tr>";
      for (int64_t i = 0; i < p.points.dim(0); ++i)
        s << "<td>i=" << p.source[i] << " j=" << p.target[i] << "</td>";
      s << "</tr><tr>";
      for (int64_t i = 0; i < p.points.dim(0); ++i)
        s << "<td>" << img(p.points, i, "point " + std::to_string(i)) << "</td>";
      s << "</tr><tr>";
      for (int64_t i = 0; i < p.points.dim(0); ++i)
        s << "<td>label " << p.labels[i] << (p.converged[i] ? "" : "*") << "</td>";
      s << "</tr></tbody></table>\n";
    }
  }

  s << "<h2>Zoo</h2>\n<table id=\"zoo\"><thead><tr><th>file</th><th>group</th><th>family</th>"
    << "<th>sha256</th></tr></thead><tbody>\n";
  s << "<tr><td>" << xml_escape(r.target_file) << "</td><td>target</td><td>"
    << xml_escape(r.target_arch) << "</td><td>" << r.target_sha256 << "</td></tr>\n";
  for (const SuspectInfo& x : r.suspects)
    s << "<tr><td>" << xml_escape(x.file) << "</td><td>" << group_name(x.group) << "</td><td>"
      << xml_escape(x.family) << "</td><td>" << x.sha256 << "</td></tr>\n";
  s << "</tbody></table>\n";
  for (const ZooProblem& p : r.problems)
    s << "<p class=\"note\">left out: " << xml_escape(p.file) << ": " << xml_escape(p.reason) << "</p>\n";
  for (const ZooDuplicate& d : r.duplicates)
    s << "<p class=\"note\">" << xml_escape(d.file) << " duplicates " << xml_escape(d.duplicate_of)
      << ": counted once</p>\n";
  for (const std::string& u : r.unlisted)
    s << "<p class=\"note\">ignored: " << xml_escape(u) << " (not in the manifest)</p>\n";
  s << "</body></html>\n";
  return s.str();
}

}  // namespace ipg
