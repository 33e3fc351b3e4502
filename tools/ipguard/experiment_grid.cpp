// Presets and the parsing of --grid, --methods, --modes and --converged
// (experiment_grid.h).
#include "tools/ipguard/experiment_grid.h"
#include "engine/number_text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "fingerprint/extract.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

namespace {

// Kept in step with the --help text of experiment_command.cpp, which says why.
constexpr int64_t kQuickCwIters = 200;

MethodGrid grid(Method m, std::vector<double> values, MethodBudget b = {}) {
  return {m, std::move(values), b};
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

double value(const std::string& text, const std::string& what, const Bounds& b) {
  const std::string e = bounds_error(what, text, b);
  if (!e.empty()) throw UsageError(e);
  return parse_number(text, what);
}

Bounds whole_at_least(double lo) {
  Bounds b;
  b.lo = lo;
  b.integer = true;
  return b;
}

Bounds positive_bounds() {
  Bounds b;
  b.lo = 0;
  b.lo_open = true;
  return b;
}

// --grid's keys, in the order its errors list them; which method reads which is
// reads_option's table (fingerprint/extract.h), shared with extract's refusals.
struct GridKey {
  std::string key;
  MethodOption option;
};
const GridKey kGridKeys[] = {{"k", MethodOption::K},          {"eps", MethodOption::Eps},
                             {"iters", MethodOption::Iters},  {"steps", MethodOption::BinarySteps},
                             {"lr", MethodOption::Lr},        {"c0", MethodOption::C0},
                             {"alpha", MethodOption::Alpha}};

// The option `key` names for method m; null when m does not read it.
const MethodOption* grid_option(const std::string& key, Method m) {
  for (const GridKey& k : kGridKeys)
    if (k.key == key && reads_option(method_name(m), k.option)) return &k.option;
  return nullptr;
}

}  // namespace

Preset preset(const std::string& name) {
  Preset p;
  p.name = name;
  p.modes.assign(std::begin(kAllModes), std::end(kAllModes));
  if (name == "quick") {
    MethodBudget cw;
    cw.iters = kQuickCwIters;
    p.grids = {grid(Method::IPGuard, {0.1, 1, 3, 10, 30, 100}), grid(Method::CWL2, {0, 1, 10}, cw),
               grid(Method::FGSM, {0.01, 0.03, 0.1, 0.3}), grid(Method::IGSM, {0.01, 0.03, 0.1, 0.3}),
               grid(Method::Random, {0})};
    p.convergence = {Convergence::Paper};
  } else if (name == "full") {
    MethodBudget cw;
    cw.iters = 10000;  // Carlini's max_iterations, per binary step (9 steps)
    p.grids = {grid(Method::IPGuard, {0.1, 0.3, 1, 3, 10, 30, 100, 200}),
               grid(Method::CWL2, {0, 0.3, 1, 3, 10, 30, 100}, cw),
               grid(Method::FGSM, {0.001, 0.003, 0.01, 0.03, 0.1, 0.3}),
               grid(Method::IGSM, {0.001, 0.003, 0.01, 0.03, 0.1, 0.3}),
               grid(Method::Random, {0})};
    p.convergence = {Convergence::Paper, Convergence::UntilConverged};
  } else {
    throw UsageError("--preset must be quick or full, not '" + name + "'");
  }
  return p;
}

std::vector<MethodGrid> parse_grid(const std::string& text, const std::vector<MethodGrid>& defaults) {
  std::vector<MethodGrid> out;
  std::string separated = text;  // ';' or white space between methods
  for (char& c : separated)
    if (c == ' ' || c == '\t' || c == '\n') c = ';';
  for (const std::string& entry : split(separated, ';')) {
    const std::vector<std::string> parts = split(entry, ':');
    Method m;
    try {
      m = parse_method(parts.at(0));
    } catch (const std::exception&) {
      throw UsageError("--grid: unknown method '" + parts.at(0) +
                       "' (ipguard, cwl2, fgsm, igsm, random)");
    }
    for (const MethodGrid& o : out)
      if (o.method == m) throw UsageError(std::string("--grid: ") + method_name(m) + " given twice");
    MethodGrid g = grid(m, {0});
    for (const MethodGrid& d : defaults)
      if (d.method == m) g = d;
    std::vector<MethodOption> seen;  // a key given twice: refused, as a method given twice
    for (size_t i = 1; i < parts.size(); ++i) {
      const size_t eq = parts[i].find('=');
      if (eq == std::string::npos)
        throw UsageError("--grid: '" + parts[i] + "' in " + method_name(m) + " is not KEY=VALUE");
      const std::string key = parts[i].substr(0, eq), val = parts[i].substr(eq + 1);
      const std::string what = std::string("--grid ") + method_name(m) + " " + key;
      const MethodOption* option = grid_option(key, m);
      if (option && std::find(seen.begin(), seen.end(), *option) != seen.end())
        throw UsageError("--grid: " + std::string(method_name(m)) + " " + key + " given twice");
      if (option) seen.push_back(*option);
      if (!option) {
        std::string keys;
        for (const GridKey& k : kGridKeys)
          if (reads_option(method_name(m), k.option)) keys += (keys.empty() ? "" : ", ") + k.key;
        throw UsageError("--grid: " + std::string(method_name(m)) + " has no option '" + key +
                         "' (its options: " + (keys.empty() ? "none" : keys) + ")");
      }
      switch (*option) {
        case MethodOption::K:  // the swept parameter (param_name)
        case MethodOption::Eps:
          g.values.clear();
          for (const std::string& v : split(val, ','))
            g.values.push_back(
                value(v, what, *option == MethodOption::K ? k_bounds() : unit_step_bounds()));
          if (g.values.empty()) throw UsageError(what + " needs at least one value");
          break;
        case MethodOption::Iters:
          g.budget.iters = static_cast<int64_t>(value(val, what, whole_at_least(1)));
          break;
        case MethodOption::Lr:
          g.budget.lr = value(val, what, positive_bounds());
          break;
        case MethodOption::BinarySteps:
          g.budget.binary_steps = static_cast<int64_t>(value(val, what, whole_at_least(1)));
          break;
        case MethodOption::C0:
          g.budget.c0 = value(val, what, positive_bounds());
          break;
        case MethodOption::Alpha:
          g.budget.alpha = value(val, what, unit_step_bounds());
          break;
        case MethodOption::Target:  // a mode (--modes), not a grid key
          break;
      }
    }
    std::sort(g.values.begin(), g.values.end());
    g.values.erase(std::unique(g.values.begin(), g.values.end()), g.values.end());
    out.push_back(g);
  }
  if (out.empty()) throw UsageError("--grid needs at least one method");
  return out;
}

std::vector<MethodGrid> pick_methods(const std::string& list, const std::vector<MethodGrid>& defaults) {
  std::vector<MethodGrid> out;
  for (const std::string& name : split_list(list)) {
    bool found = false;
    for (const MethodGrid& d : defaults)
      if (name == method_name(d.method)) {
        if (std::none_of(out.begin(), out.end(),
                         [&](const MethodGrid& o) { return o.method == d.method; }))
          out.push_back(d);
        found = true;
      }
    if (!found)
      throw UsageError("--methods: unknown method '" + name + "' (ipguard, cwl2, fgsm, igsm, random)");
  }
  if (out.empty()) throw UsageError("--methods needs at least one method");
  return out;
}

std::vector<Mode> parse_modes(const std::string& text) {
  if (text == "all") return {std::begin(kAllModes), std::end(kAllModes)};
  std::vector<Mode> out;
  for (const std::string& item : split_list(text)) {
    Mode m;
    try {
      m = parse_mode(item);
    } catch (const std::exception& e) {
      throw UsageError(std::string("--modes: ") + e.what());
    }
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  if (out.empty()) throw UsageError("--modes needs at least one mode (or all)");
  return out;
}

std::vector<Convergence> parse_convergence(const std::string& text) {
  if (text == "paper") return {Convergence::Paper};
  if (text == "until") return {Convergence::UntilConverged};
  if (text == "both") return {Convergence::Paper, Convergence::UntilConverged};
  throw UsageError("--converged must be paper, until or both, not '" + text + "'");
}

std::vector<Setting> expand(const std::vector<MethodGrid>& grids, const std::vector<Mode>& modes,
                            const std::vector<Convergence>& convergence) {
  std::vector<Setting> out;
  for (const MethodGrid& g : grids)
    for (Convergence c : convergence)
      for (const Mode& mode : modes)
        for (double v : g.method == Method::Random ? std::vector<double>{0} : g.values) {
          Setting s;
          s.method = g.method;
          s.param = v;
          s.mode = mode;
          s.convergence = c;
          s.budget = g.budget;
          out.push_back(s);
        }
  return out;
}

std::string grid_text(const std::vector<MethodGrid>& grids) {
  std::string out;
  for (const MethodGrid& g : grids) {
    if (!out.empty()) out += ";";
    out += method_name(g.method);
    if (g.method != Method::Random) {
      out += std::string(":") + param_name(g.method) + "=";
      for (size_t i = 0; i < g.values.size(); ++i) out += (i ? "," : "") + number_text(g.values[i]);
    }
    if (g.method == Method::IPGuard || g.method == Method::CWL2 || g.method == Method::IGSM)
      out += ":iters=" + std::to_string(g.budget.iters);
    if (g.method == Method::CWL2) out += ":steps=" + std::to_string(g.budget.binary_steps);
  }
  return out;
}

}  // namespace ipg::cli
