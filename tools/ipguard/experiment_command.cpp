// `ipguard experiment`: methods x parameters over a zoo folder (fingerprint/experiment.h),
// a table on stdout, the full results as JSON (--json, or --out FILE written atomically).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "fingerprint/experiment.h"
#include "models/data/dataset.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"
#include "tools/ipguard/svg_chart.h"

namespace ipg::cli {

namespace {

// A list each_number() checked while parsing.
std::vector<double> numbers(const std::string& s, const char* what) {
  std::vector<double> out;
  for (const std::string& item : split_list(s)) out.push_back(parse_number(item, what));
  return out;
}

const char* const kMethods[] = {"ipguard", "cwl2", "fgsm", "igsm", "random"};

// Writes text to a temporary name beside `path`, then renames it: never a half file.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp);
    f << text;
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw std::runtime_error(path + ": cannot write");
    }
  }
  std::filesystem::rename(tmp, path);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

}  // namespace

void add_experiment(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  struct Args {
    std::string zoo, methods = "ipguard,cwl2,fgsm,igsm,random", k = "1,3,10", eps = "0.03,0.1,0.3",
                     data = "fashion-mnist", out, plot;
    ExtractOptions o;
    int batch = 500;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "experiment", "run methods x parameters over a zoo: ARUC and matching rates");
  cmd->add_option("--zoo", a->zoo,
                  "zoo folder: target.h5, positive/*.h5 (post-processed copies), "
                  "negative/*.h5 (independent models)")
      ->required();
  cmd->add_option("--methods", a->methods, "comma-separated: ipguard, cwl2, fgsm, igsm, random")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& list) {
            const auto items = split_list(list);
            if (items.empty()) throw UsageError("--methods needs at least one method");
            for (const std::string& m : items)
              if (std::find(std::begin(kMethods), std::end(kMethods), m) == std::end(kMethods))
                throw UsageError("--methods: unknown method '" + m +
                                 "' (ipguard, cwl2, fgsm, igsm, random)");
            return std::string();
          },
          ""));
  each_number(cmd->add_option("--k", a->k, "ipguard / cwl2 values of k")->capture_default_str(),
              k_bounds());
  each_number(cmd->add_option("--eps", a->eps, "fgsm / igsm values of eps")->capture_default_str(),
              unit_step_bounds());
  add_extract_options(cmd, a->o);
  data_spec(cmd->add_option("--data", a->data, "training images for --init train")
                ->capture_default_str());
  cmd->add_option("--out", a->out, "also write the JSON results to this file");
  cmd->add_option("--plot", a->plot, "also draw the ARUC of every setting into this SVG file");
  runners[cmd] = [&g, a]() {
    const Zoo zoo = scan_zoo(a->zoo);
    // Every model of the zoo and the data are inputs; the JSON and the chart must not
    // replace them, nor each other.
    std::vector<Input> inputs = {{"--zoo", zoo.target}, {"--data", data_file(a->data)}};
    for (const auto* list : {&zoo.positives, &zoo.negatives})
      for (const std::string& m : *list) inputs.push_back({"--zoo", m});
    if (!a->out.empty()) check_output_file("--out", a->out, inputs);
    if (!a->plot.empty()) {
      if (!a->out.empty()) inputs.push_back({"--out", a->out});
      check_output_file("--plot", a->plot, inputs);
    }
    std::vector<ExperimentSetting> settings;
    for (const std::string& m : split_list(a->methods)) {
      if (m == "ipguard" || m == "cwl2")
        for (double k : numbers(a->k, "--k")) settings.push_back({m, k});
      else if (m == "fgsm" || m == "igsm")
        for (double e : numbers(a->eps, "--eps")) settings.push_back({m, e});
      else if (m == "random")
        settings.push_back({m, 0});
    }
    ExtractOptions o = a->o;
    o.seed = g.seed;
    const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    if (dev.is_cuda()) o.check_every = 10;
    Dataset train_set;
    if (o.init == "train") train_set = load_dataset(a->data, Split::Train);
    if (!g.json)
      std::cout << zoo.positives.size() << " positive and " << zoo.negatives.size()
                << " negative suspects, " << settings.size() << " settings, " << o.n
                << " points each (init " << o.init << ", target " << o.target << ")\n"
                << "method   param    ARUC   positives mean/min   negatives mean/max   "
                   "converged   seconds\n";
    const auto results = run_experiment(
        zoo, settings, o, o.init == "train" ? &train_set.images : nullptr, dev, a->batch,
        [&](const SettingResult& r) {
          if (g.json) return;
          const auto& p = r.positive_rates;
          const auto& q = r.negative_rates;
          const std::string param =
              r.setting.method == "random"
                  ? "-"
                  : (r.setting.method == "ipguard" || r.setting.method == "cwl2" ? "k=" : "eps=") +
                        nlohmann::json(r.setting.param).dump();
          std::printf(
              "%-8s %-8s %5.3f   %5.3f / %5.3f        %5.3f / %5.3f        %4lld/%-4lld %8.1f\n",
              r.setting.method.c_str(), param.c_str(), r.aruc, mean(p),
              *std::min_element(p.begin(), p.end()), mean(q), *std::max_element(q.begin(), q.end()),
              (long long)r.converged, (long long)r.points, r.extract_seconds);
          std::fflush(stdout);
        });
    nlohmann::json j = {{"zoo", a->zoo},
                        {"target", zoo.target},
                        {"positives", zoo.positives},
                        {"negatives", zoo.negatives},
                        {"n", o.n},
                        {"init", o.init},
                        {"target_label", o.target},
                        {"seed", g.seed},
                        {"device", dev.str()}};
    for (const SettingResult& r : results)
      j["results"].push_back({{"method", r.setting.method},
                              {"param", r.setting.param},
                              {"aruc", r.aruc},
                              {"positive_rates", r.positive_rates},
                              {"negative_rates", r.negative_rates},
                              {"converged", r.converged},
                              {"points", r.points},
                              {"extract_seconds", r.extract_seconds}});
    if (!a->out.empty()) write_atomically(a->out, j.dump(2) + "\n");
    if (!a->plot.empty())
      write_atomically(a->plot, aruc_chart_svg(results, "ARUC on " + a->zoo + " (" +
                                                            std::to_string(o.n) + " points, init " +
                                                            o.init + ", target " + o.target + ")"));
    if (g.json) std::cout << j.dump(2) << "\n";
    return 0;
  };
}

}  // namespace ipg::cli
