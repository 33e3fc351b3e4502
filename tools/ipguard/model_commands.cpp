// `ipguard train`, `postprocess`, `eval` and `info`: thin wrappers over models/. `train`
// is tools/ipguard/train_command.cpp's, `postprocess` postprocess_command.cpp's.
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/device.h"
#include "engine/error.h"
#include "models/data/dataset.h"
#include "models/forest_file.h"
#include "models/frozen_network.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

void add_model_commands(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  add_train(app, g, runners);
  add_postprocess(app, g, runners);

  // ---- eval ----
  struct EvalArgs {
    std::string model, data = "fashion-mnist";
    int batch = 500;
  };
  auto ea = std::make_shared<EvalArgs>();
  CLI::App* eval_cmd = app.add_subcommand("eval", "accuracy of a model on a dataset's test split");
  eval_cmd
      ->add_option("--model", ea->model, "model file: a network or forest (HDF5) or an ONNX network")
      ->required();
  data_spec(eval_cmd->add_option("--data", ea->data, "dataset spec (see train --help)")
                ->capture_default_str());
  at_least(eval_cmd->add_option("--batch", ea->batch, "batch size")->capture_default_str(), 1);
  runners[eval_cmd] = [&g, ea]() {
    const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    auto model = load_classifier(ea->model);
    const Dataset test_set = load_dataset(ea->data, Split::Test);
    double acc = 0;
    try {
      acc = evaluate(*model, test_set, dev, ea->batch);
    } catch (const ShapeError& e) {  // images the model cannot take: name both
      throw ShapeError(ea->model + ": " + e.what() + " (the images of " + test_set.name + ")");
    }
    if (g.json)
      std::cout << nlohmann::json{{"model", ea->model},
                                  {"data", test_set.name},
                                  {"images", test_set.size()},
                                  {"accuracy", acc}}
                       .dump(2)
                << "\n";
    else
      std::cout << ea->model << " on " << test_set.name << " (" << test_set.size()
                << " images): accuracy " << acc << "\n";
    return 0;
  };

  // ---- info ----
  auto path = std::make_shared<std::string>();
  auto show_plan = std::make_shared<bool>(false);
  CLI::App* info_cmd = app.add_subcommand("info", "describe a model file");
  info_cmd->add_option("model", *path, "model file: a network or forest (HDF5) or an ONNX network")
      ->required();
  info_cmd->add_flag("--plan", *show_plan,
                     "also trace the network (CPU, batch 1) and say whether the fingerprint "
                     "loop runs it fused, step by step, or through autodiff, and why");
  runners[info_cmd] = [&g, path, show_plan]() {
    if (is_forest_file(*path)) {
      if (*show_plan) throw UsageError("info --plan: " + *path + " is a random forest; only networks have a plan");
      return forest_info(g, *path);
    }
    const ModelInfo info = read_model_info(*path);
    const ModelConfig& c = info.config;
    // The plan the fingerprint loop would run: traced once on the CPU at batch 1 (the same
    // plan serves every batch); unfused networks run every iteration through autodiff.
    nlohmann::json plan;
    if (*show_plan) {
      auto net = load_model(*path);
      FrozenNetwork frozen(*net, {1, c.in_channels, c.height, c.width});
      plan = {{"fused", frozen.fused()}, {"why", frozen.why_unfused()}, {"steps", frozen.plan_text()}};
    }
    nlohmann::json j = {{"file", *path},
                        {"arch", c.arch},
                        {"input", {c.in_channels, c.height, c.width}},
                        {"classes", c.classes},
                        {"parameters", info.num_parameters},
                        {"mean", c.mean},
                        {"std", c.std},
                        {"data", info.provenance.data},
                        {"seed", info.provenance.seed},
                        {"epochs", info.provenance.epochs},
                        {"accuracy", info.provenance.accuracy},
                        {"recipe", info.provenance.recipe}};
    for (const auto& [name, shape] : info.tensors) j["tensors"][name] = shape;
    if (*show_plan) j["plan"] = plan;
    if (g.json) {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::cout << *path << "\n  arch        " << c.arch << "\n  input       " << c.in_channels << "x"
              << c.height << "x" << c.width << "\n  classes     " << c.classes << "\n  parameters  "
              << info.num_parameters << " in " << info.tensors.size() << " tensors\n";
    if (!info.provenance.data.empty())
      std::cout << "  data        " << info.provenance.data << "\n";
    if (info.provenance.seed >= 0) std::cout << "  seed        " << info.provenance.seed << "\n";
    if (info.provenance.epochs >= 0)
      std::cout << "  epochs      " << info.provenance.epochs << "\n";
    if (info.provenance.accuracy >= 0)
      std::cout << "  accuracy    " << info.provenance.accuracy << "\n";
    if (!info.provenance.recipe.empty())
      std::cout << "  recipe      " << info.provenance.recipe << "\n";
    if (*show_plan) {
      if (plan["fused"].get<bool>()) {
        const std::string steps = plan["steps"].get<std::string>();
        std::cout << "  plan        fused, "
                  << std::count(steps.begin(), steps.end(), '\n') << " steps:\n";
        std::istringstream lines(steps);
        for (std::string line; std::getline(lines, line);) std::cout << "    " << line << "\n";
      } else {
        std::cout << "  plan        autodiff (not fused): " << plan["why"].get<std::string>() << "\n";
      }
    }
    return 0;
  };
}

}  // namespace ipg::cli
