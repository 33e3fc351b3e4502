// Tables 4, 5, 8 and the all-settings table as cells, and their text rendering
// (experiment_tables.h).
#include "fingerprint/experiment_tables.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace ipg {

std::string fixed(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

const SettingResult* best_result(const std::vector<SettingResult>& results, Method method,
                                 const Mode* mode, Convergence convergence) {
  const SettingResult* best = nullptr;
  for (const SettingResult& r : results) {
    if (r.setting.method != method || r.setting.convergence != convergence) continue;
    if (mode && !(r.setting.mode == *mode)) continue;
    if (!best || r.aruc > best->aruc) best = &r;
  }
  return best;
}

std::vector<Convergence> policies_in(const std::vector<SettingResult>& results) {
  std::vector<Convergence> out;
  for (Convergence c : {Convergence::Paper, Convergence::UntilConverged})
    if (std::any_of(results.begin(), results.end(),
                    [c](const SettingResult& r) { return r.setting.convergence == c; }))
      out.push_back(c);
  return out;
}

namespace {

std::string param_cell(const Setting& s) {
  if (s.method == Method::Random) return "-";
  char b[64];
  std::snprintf(b, sizeof b, "%s=%g", param_name(s.method), s.param);
  return b;
}

std::string converged_cell(const SettingResult& r) {
  std::string s = std::to_string(r.converged) + "/" + std::to_string(r.points);
  if (r.setting.convergence == Convergence::UntilConverged)
    s += " of " + std::to_string(r.drawn) + " drawn";
  return s;
}

std::string stem(const std::string& file) {
  const size_t slash = file.find_last_of('/');
  std::string s = slash == std::string::npos ? file : file.substr(slash + 1);
  if (s.size() > 3 && s.compare(s.size() - 3, 3, ".h5") == 0) s.resize(s.size() - 3);
  return s;
}

std::vector<Method> methods_in(const std::vector<SettingResult>& results) {
  std::vector<Method> out;
  for (Method m : kAllMethods)
    if (std::any_of(results.begin(), results.end(),
                    [m](const SettingResult& r) { return r.setting.method == m; }))
      out.push_back(m);
  return out;
}

void left_out_notes(const ExperimentRecord& r, TextTable& t) {
  for (const ZooProblem& p : r.problems)
    t.notes.push_back("left out: " + p.file + ": " + p.reason);
  for (const ZooDuplicate& d : r.duplicates)
    t.notes.push_back(d.file + " duplicates " + d.duplicate_of + ": counted once");
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

TextTable table4(const ExperimentRecord& r) {
  TextTable t;
  t.title = "Table 4: best ARUC per method and mode (r = 100), with AUC and TPR at FPR <= 5% "
            "of that setting";
  t.header = {"method", "mode", "policy", "best", "ARUC", "AUC", "TPR@FPR<=5%", "converged"};
  for (Method m : methods_in(r.results))
    for (Convergence c : policies_in(r.results))
      for (const Mode& mode : kAllModes) {
        const SettingResult* b = best_result(r.results, m, &mode, c);
        if (!b) continue;
        t.rows.push_back({method_name(m), mode_suffix(mode),
                          c == Convergence::Paper ? "paper" : "until-conv", param_cell(b->setting),
                          fixed(b->aruc, 3), fixed(b->auc, 3), fixed(b->tpr_at_fpr5, 3),
                          converged_cell(*b)});
      }
  t.notes.push_back(std::to_string(r.suspects.size()) + " suspects: " +
                    std::to_string(std::count_if(r.suspects.begin(), r.suspects.end(),
                                                 [](const SuspectInfo& s) {
                                                   return s.group == SuspectGroup::Positive;
                                                 })) +
                    " positive, " +
                    std::to_string(std::count_if(r.suspects.begin(), r.suspects.end(),
                                                 [](const SuspectInfo& s) {
                                                   return s.group == SuspectGroup::Negative;
                                                 })) +
                    " negative, " +
                    std::to_string(std::count_if(r.suspects.begin(), r.suspects.end(),
                                                 [](const SuspectInfo& s) {
                                                   return s.group == SuspectGroup::Adaptive;
                                                 })) +
                    " adaptive (not in ARUC); modes: T/R = init from training images / "
                    "uniform noise, L/R = least-likely / random target label");
  left_out_notes(r, t);
  return t;
}

std::vector<TextTable> table5(const ExperimentRecord& r) {
  std::vector<TextTable> out;
  const std::vector<Method> methods = methods_in(r.results);
  for (Convergence c : policies_in(r.results)) {
    TextTable t;
    t.title = std::string("Table 5: matching rates at each method's best setting (") +
              (c == Convergence::Paper ? "paper's points" : "until converged") +
              "); negatives: [min, max] per family";
    t.header = {"suspect"};
    std::vector<const SettingResult*> best;
    for (Method m : methods) {
      const SettingResult* b = best_result(r.results, m, nullptr, c);
      if (!b) continue;
      best.push_back(b);
      std::string h = method_name(m);
      if (m != Method::Random) h += " " + param_cell(b->setting);
      t.header.push_back(h + " " + mode_suffix(b->setting.mode));
    }
    auto rate_of = [](const SettingResult* b, const std::string& file) {
      for (const auto* v : {&b->positive, &b->negative, &b->adaptive})
        for (const SuspectRate& s : *v)
          if (s.file == file) return s.rate;
      return -1.0;
    };
    for (SuspectGroup g : {SuspectGroup::Positive, SuspectGroup::Adaptive})
      for (const SuspectInfo& s : r.suspects) {
        if (s.group != g) continue;
        std::vector<std::string> row = {std::string(group_name(g)) + " " + stem(s.file)};
        for (const SettingResult* b : best) row.push_back(fixed(rate_of(b, s.file), 2));
        t.rows.push_back(row);
      }
    std::map<std::string, std::vector<std::string>> families;  // family -> files
    for (const SuspectInfo& s : r.suspects)
      if (s.group == SuspectGroup::Negative) families[s.family].push_back(s.file);
    for (const auto& [family, files] : families) {
      std::vector<std::string> row = {"negative " + family + " (" + std::to_string(files.size()) +
                                      (family == r.target_arch ? ", same arch)" : ")")};
      for (const SettingResult* b : best) {
        double lo = 1, hi = 0;
        for (const std::string& f : files) {
          lo = std::min(lo, rate_of(b, f));
          hi = std::max(hi, rate_of(b, f));
        }
        row.push_back(files.size() == 1 ? fixed(lo, 2)
                                        : "[" + fixed(lo, 2) + ", " + fixed(hi, 2) + "]");
      }
      t.rows.push_back(row);
    }
    // Positives, then the negative families, then adaptive (as the paper's tables).
    std::stable_sort(t.rows.begin(), t.rows.end(), [](const auto& a, const auto& b) {
      auto rank = [](const std::string& s) {
        return s.rfind("positive", 0) == 0 ? 0 : s.rfind("adaptive", 0) == 0 ? 2 : 1;
      };
      return rank(a[0]) < rank(b[0]);
    });
    out.push_back(t);
  }
  return out;
}

TextTable table8(const ExperimentRecord& r) {
  TextTable t;
  t.title = "Table 8: seconds to extract 100 fingerprint points at each method's best setting (" +
            r.device + ")";
  t.header = {"method", "policy", "best", "mode", "seconds/100", "threads", "ARUC", "converged"};
  bool resumed = false, shared = false;
  for (Method m : methods_in(r.results))
    for (Convergence c : policies_in(r.results)) {
      const SettingResult* b = best_result(r.results, m, nullptr, c);
      if (!b) continue;
      resumed = resumed || b->resumed;
      shared = shared || b->shared > 1;
      t.rows.push_back({method_name(m), c == Convergence::Paper ? "paper" : "until-conv",
                        param_cell(b->setting), mode_suffix(b->setting.mode),
                        fixed(b->seconds_per_100, 2) + (b->resumed ? "*" : "") +
                            (b->shared > 1 ? "/" + std::to_string(b->shared) : ""),
                        std::to_string(b->threads), fixed(b->aruc, 3), converged_cell(*b)});
    }
  if (resumed) t.notes.push_back("* timed in the earlier run this one resumed");
  if (shared)
    t.notes.push_back("/G: its first draw ran in one batch with G - 1 other settings "
                      "(--share-batch); the batch's time is divided equally among them");
  return t;
}

TextTable settings_table(const ExperimentRecord& r) {
  TextTable t;
  t.title = "All settings";
  t.header = {"method", "param", "mode", "policy", "ARUC", "AUC", "TPR@FPR<=5%",
              "pos mean/min", "neg mean/max", "converged", "s/100"};
  for (const SettingResult& s : r.results) {
    const auto p = s.rates(SuspectGroup::Positive), q = s.rates(SuspectGroup::Negative);
    t.rows.push_back(
        {method_name(s.setting.method), param_cell(s.setting), mode_suffix(s.setting.mode),
         s.setting.convergence == Convergence::Paper ? "paper" : "until-conv", fixed(s.aruc, 3),
         fixed(s.auc, 3), fixed(s.tpr_at_fpr5, 3),
         fixed(mean(p), 2) + " / " + fixed(*std::min_element(p.begin(), p.end()), 2),
         fixed(mean(q), 2) + " / " + fixed(*std::max_element(q.begin(), q.end()), 2),
         converged_cell(s),
         fixed(s.seconds_per_100, 2) + (s.resumed ? "*" : "") +
             (s.shared > 1 ? "/" + std::to_string(s.shared) : "")});
  }
  return t;
}

std::string render_text(const TextTable& t) {
  std::vector<size_t> width(t.header.size(), 0);
  for (size_t c = 0; c < t.header.size(); ++c) width[c] = t.header[c].size();
  for (const auto& row : t.rows)
    for (size_t c = 0; c < row.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  std::ostringstream s;
  s << t.title << "\n";
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t c = 0; c < cells.size(); ++c) {
      l += cells[c];
      if (c + 1 < cells.size()) l += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    s << "  " << l << "\n";
  };
  line(t.header);
  for (const auto& row : t.rows) line(row);
  for (const std::string& n : t.notes) s << "  " << n << "\n";
  return s.str();
}

}  // namespace ipg
