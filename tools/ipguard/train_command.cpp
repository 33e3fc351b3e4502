// `ipguard train`: its options, and run_train (which `postprocess` runs too): the checks,
// the progress lines and the report around models/recipe.h's training.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/data/dataset.h"
#include "models/recipe.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

namespace {

// The recipe of `train` / `postprocess` (models/recipe.h): every model is made by it.
ModelRecipe recipe_of(const GlobalOptions& g, const TrainArgs& ta) {
  ModelRecipe r;
  r.arch = ta.arch;
  r.init = ta.init;
  r.teacher = ta.teacher;
  r.extraction = ta.extraction;
  r.temperature = ta.temperature;
  r.mods.reinit_last = ta.reinit_last;
  r.mods.last_layer_only = ta.opt.last_layer_only;
  r.mods.prune_weights = ta.prune_weights;
  r.mods.prune_filters = ta.prune_filters;
  r.data = ta.data;
  r.limit = ta.limit;
  r.augment = ta.augment;
  r.seed = g.seed;
  r.opt = ta.opt;
  r.opt.last_layer_only = false;  // set by the modifications, which record it
  r.forest = ta.forest;
  return r;
}

}  // namespace

// `train`, and `postprocess` (which fills the same arguments from its attack name).
int run_train(const GlobalOptions& g, const TrainArgs& ta, std::ostream& report) {
  // Usage first: loading a dataset takes seconds, a training epoch minutes.
  if (!ta.init.empty() && !ta.arch.empty())
    throw UsageError("--arch comes from the " + ta.init_flag + " file; give one or the other");
  if (ta.init.empty() && ta.arch.empty()) throw UsageError("give --arch (or --init FILE)");
  if (!ta.arch.empty()) check_architecture("--arch", ta.arch);
  if (ta.arch == "rf" &&
      (ta.prune_weights > 0 || ta.prune_filters > 0 || ta.reinit_last || ta.opt.last_layer_only))
    throw UsageError("--arch rf: --reinit-last, --last-layer-only and --prune-* are for networks");
  const std::string input = ta.init.empty() ? ta.teacher : ta.init;
  check_output_file("--out", ta.out, with_data({{ta.init_flag, input}}, ta.data));
  const ModelRecipe r = recipe_of(g, ta);
  check_recipe_files(r);  // an ONNX or forest --init: before the dataset loads
  const bool tty = ::isatty(2);
  const Device dev = resolve_device(g.device, &std::cerr);
  const Dataset train_set = first_rows(load_dataset(ta.data, Split::Train), ta.limit);
  const Dataset test_set = load_dataset(ta.data, Split::Test);
  if (ta.arch == "rf") return train_forest(g, r, train_set, test_set, ta.out, report);
  PreparedModel prepared = prepare_model(r, train_set, dev);
  const TrainOptions opt = prepared.opt;
  const ModelConfig cfg = prepared.net->config();
  if (!g.json)
    std::cerr << (prepared.from_file ? "fine-tuning " : "training ") << cfg.arch << " ("
              << prepared.net->num_parameters() << " parameters) on " << train_set.name << " ("
              << train_set.size() << " images"
              << (ta.extraction ? ", labelled by " + ta.teacher : std::string()) << "), "
              << counted(opt.epochs, "epoch") << ", batch " << opt.batch << ", " << dev.str()
              << "\n";
  MakeCallbacks cb;
  cb.epoch = [&](const EpochReport& r) {
    if (g.json) return;
    std::fprintf(stderr,
                 "%sepoch %d/%d  lr %.4f  loss %.4f  train acc %.4f  test acc %.4f  %.0f "
                 "img/s  %.1f s\n",
                 tty ? "\r\033[K" : "", r.epoch, opt.epochs, r.lr, r.train_loss, r.train_accuracy,
                 r.test_accuracy, r.images_per_second, r.seconds);
  };
  cb.batch = [&](int epoch, int64_t done, int64_t total, double loss) {
    if (!tty || g.json) return;
    const int width = 30, fill = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r\033[Kepoch %d [%.*s%*s] %lld/%lld  loss %.4f", epoch, fill,
                 "##############################", width - fill, "", (long long)done,
                 (long long)total, loss);
  };
  MadeModel m = train_prepared(std::move(prepared), r, test_set, cb);
  save_made_model(m, ta.out);
  nlohmann::json out = {{"model", ta.out},
                        {"out", ta.out},
                        {"arch", cfg.arch},
                        {"test_accuracy", m.provenance.accuracy},
                        {"device", dev.str()}};
  for (const auto& e : m.epochs)
    out["epochs"].push_back({{"epoch", e.epoch},
                             {"loss", e.train_loss},
                             {"train_accuracy", e.train_accuracy},
                             {"test_accuracy", e.test_accuracy},
                             {"seconds", e.seconds}});
  if (g.json)
    report << out.dump(2) << "\n";
  else
    report << "saved " << ta.out << " (test accuracy " << m.provenance.accuracy << ")\n";
  return 0;
}

namespace {

Bounds fraction_below_one() {
  Bounds b;
  b.lo = 0;
  b.hi = 0.999;
  return b;
}

Bounds whole_between(double lo, double hi) {
  Bounds b;
  b.lo = lo;
  b.hi = hi;
  b.integer = true;
  return b;
}

}  // namespace

void add_train(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  auto ta = std::make_shared<TrainArgs>();
  CLI::App* train_cmd = app.add_subcommand("train", "train a model on a dataset and save it");
  train_cmd
      ->add_option("--arch", ta->arch,
                   "lenet5 | resnet20 | wrn-22-4 | resnet50 | vgg16 | vgg16-imagenet | rf "
                   "(random forest); not with --init")
      ->check(CLI::Validator(
          [](std::string& arch) {
            check_architecture("--arch", arch);  // before the dataset loads
            return std::string();
          },
          ""));
  data_spec(
      train_cmd
          ->add_option("--data", ta->data,
                       "fashion-mnist[:DIR] | mnist:DIR | cifar10:DIR | cifar100:DIR | h5:FILE")
          ->capture_default_str());
  train_cmd->add_option("--init", ta->init,
                        "start from this model file (fine-tuning: FTLL/FTAL/RTLL/RTAL/WP/FP)");
  train_cmd->add_flag("--reinit-last", ta->reinit_last,
                      "re-initialize the last layer first (RTLL, RTAL)");
  train_cmd->add_flag("--last-layer-only", ta->opt.last_layer_only,
                      "train the last layer alone, everything else frozen (FTLL, RTLL)");
  bounded(train_cmd->add_option("--prune-weights", ta->prune_weights,
                                "prune this fraction of smallest-|w| conv/linear weights first "
                                "and keep them at zero (WP)"),
          fraction_below_one());
  bounded(train_cmd->add_option("--prune-filters", ta->prune_filters,
                                "prune this fraction of smallest-L1 filters per conv layer first "
                                "and keep them at zero (FP)"),
          fraction_below_one());
  train_cmd
      ->add_option("--augment", ta->augment,
                   "random crop + horizontal flip: auto (on for CIFAR), on, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "on", "off"}));
  bounded(train_cmd->add_option("--trees", ta->forest.trees, "rf: number of trees")
              ->capture_default_str(),
          whole_between(1, 10000));
  bounded(
      train_cmd->add_option("--max-depth", ta->forest.max_depth, "rf: depth limit (0: unlimited)")
          ->capture_default_str(),
      whole_between(0, 1000));
  bounded(train_cmd->add_option("--crop-pad", ta->opt.crop_pad, "zero padding of the random crop")
              ->capture_default_str(),
          whole_between(0, 64));
  train_cmd->add_option("--out", ta->out, "model file to write (HDF5)")->required();
  at_least(train_cmd->add_option("--epochs", ta->opt.epochs, "epochs")->capture_default_str(), 1);
  at_least(train_cmd->add_option("--batch", ta->opt.batch, "batch size")->capture_default_str(), 1);
  positive(train_cmd->add_option("--lr", ta->opt.lr, "peak learning rate")->capture_default_str());
  Bounds momentum;
  momentum.lo = 0;
  momentum.hi = 1;
  momentum.hi_open = true;
  bounded(
      train_cmd->add_option("--momentum", ta->opt.momentum, "SGD momentum")->capture_default_str(),
      momentum);
  Bounds decay;
  decay.lo = 0;
  bounded(train_cmd->add_option("--weight-decay", ta->opt.weight_decay, "L2 weight decay")
              ->capture_default_str(),
          decay);
  train_cmd->add_option("--optimizer", ta->opt.optimizer, "sgd | adam")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "adam"}));
  train_cmd->add_option("--schedule", ta->opt.schedule, "cosine | step | constant")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "step", "constant"}));
  at_least(train_cmd->add_option("--limit", ta->limit,
                                 "train on the first N images only (quick runs; 0: all)"),
           0);
  runners[train_cmd] = [&g, ta, train_cmd]() {
    // Options of the other kind of model are refused, not ignored (refuse_given).
    if (ta->arch == "rf")
      refuse_given(train_cmd,
                   {"--epochs", "--batch", "--lr", "--momentum", "--weight-decay", "--optimizer",
                    "--schedule", "--augment", "--crop-pad"},
                   "to --arch rf (a forest is fitted, not trained by gradient steps)");
    else if (!ta->arch.empty())
      refuse_given(train_cmd, {"--trees", "--max-depth"}, "to a network (--arch " + ta->arch + ")");
    if (ta->init.empty() && ta->reinit_last)
      throw UsageError(
          "--reinit-last needs --init FILE (a fresh network's last layer is already random)");
    return run_train(g, *ta, std::cout);
  };
}

}  // namespace ipg::cli
