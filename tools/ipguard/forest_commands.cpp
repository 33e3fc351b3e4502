// `ipguard train --arch rf` and `ipguard info` on a forest file.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/data/dataset.h"
#include "models/forest_file.h"
#include "models/load.h"
#include "models/recipe.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

int train_forest(const GlobalOptions& g, const ModelRecipe& r, const Dataset& train_set,
                 const Dataset& test_set, const std::string& out, std::ostream& report) {
  const ForestOptions& options = r.forest;
  if (!g.json)
    std::cerr << "training a random forest (" << counted(options.trees, "tree") << ", "
              << (options.max_depth > 0 ? "depth <= " + std::to_string(options.max_depth)
                                        : std::string("unlimited depth"))
              << ") on " << train_set.name << " (" << train_set.size() << " images), CPU\n";
  MakeCallbacks cb;
  cb.trees = [&](int done, int total) {
    if (!g.json) std::fprintf(stderr, "  tree %d/%d\n", done, total);
  };
  MadeModel m = make_model(r, train_set, test_set, Device::cpu(), cb);
  const double acc = m.provenance.accuracy, fit_s = m.fit_seconds;
  const RandomForest& forest = *m.forest;
  const ForestStats st = forest.stats();
  save_made_model(m, out);
  if (g.json) {
    report << nlohmann::json{{"model", out},         {"out", out},
                             {"arch", "rf"},         {"trees", forest.num_trees()},
                             {"nodes", st.nodes},    {"max_depth", st.max_depth},
                             {"fit_seconds", fit_s}, {"test_accuracy", acc}}
                  .dump(2)
           << "\n";
  } else {
    report << "saved " << out << " (" << counted(forest.num_trees(), "tree") << ", " << st.nodes
           << " nodes, depth " << st.max_depth << ", fitted in " << fit_s << " s; test accuracy "
           << acc << ")\n";
  }
  return 0;
}

int forest_info(const GlobalOptions& g, const std::string& path) {
  Provenance p;
  auto forest = load_forest(path, &p);
  const ForestArrays& a = forest->arrays();
  const ForestStats st = forest->stats();
  if (g.json) {
    std::cout << nlohmann::json{{"file", path},
                                {"arch", "rf"},
                                {"input", {a.in_channels, a.height, a.width}},
                                {"classes", a.classes},
                                {"trees", forest->num_trees()},
                                {"nodes", st.nodes},
                                {"leaves", st.leaves},
                                {"max_depth", st.max_depth},
                                {"mean_depth", st.mean_depth},
                                {"data", p.data},
                                {"seed", p.seed},
                                {"accuracy", p.accuracy},
                                {"recipe", p.recipe}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << path << "\n  arch        rf (random forest)\n  input       " << a.in_channels << "x"
            << a.height << "x" << a.width << "\n  classes     " << a.classes << "\n  trees       "
            << forest->num_trees() << " (" << st.nodes << " nodes, " << st.leaves
            << " leaves, depth " << st.max_depth << ", mean " << st.mean_depth << ")\n";
  if (!p.data.empty()) std::cout << "  data        " << p.data << "\n";
  if (p.seed >= 0) std::cout << "  seed        " << p.seed << "\n";
  if (p.accuracy >= 0) std::cout << "  accuracy    " << p.accuracy << "\n";
  if (!p.recipe.empty()) std::cout << "  recipe      " << p.recipe << "\n";
  return 0;
}

}  // namespace ipg::cli
