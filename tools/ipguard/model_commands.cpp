// `ipguard train`, `ipguard eval` and `ipguard info`: thin wrappers over models/.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/data/dataset.h"
#include "models/forest_file.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

namespace {

// Per-channel mean and standard deviation of a dataset's pixels (folded into the model).
void channel_stats(const Dataset& d, std::vector<float>* mean, std::vector<float>* stdev) {
  const int64_t n = d.images.dim(0), c = d.images.dim(1), hw = d.images.dim(2) * d.images.dim(3);
  const float* p = d.images.data();
  mean->assign(c, 0.f);
  stdev->assign(c, 1.f);
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const double v = p[(i * c + ch) * hw + k];
        s += v;
        s2 += v * v;
      }
    const double cnt = double(n) * double(hw), m = s / cnt;
    (*mean)[ch] = static_cast<float>(m);
    (*stdev)[ch] = static_cast<float>(std::sqrt(std::max(1e-12, s2 / cnt - m * m)));
  }
}

// A number as a person writes it (0.25, not 0.250000).
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The first `limit` rows of a dataset (all when limit <= 0), sharing storage.
Dataset head(const Dataset& d, int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return d;
  Dataset h = d;
  h.images = d.images.narrow0(0, limit);
  h.labels = d.labels.narrow0(0, limit);
  return h;
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
  check_output_file("--out", ta.out, {{ta.init_flag, ta.init}, {"--data", data_file(ta.data)}});
  const bool tty = ::isatty(2);
  const Device dev = resolve_device(g.device, &std::cerr);
  const Dataset train_set = head(load_dataset(ta.data, Split::Train), ta.limit);
  const Dataset test_set = load_dataset(ta.data, Split::Test);
  if (ta.arch == "rf") {
    ForestOptions fo = ta.forest;
    fo.seed = g.seed;
    return train_forest(g, fo, ta.data, train_set, test_set, ta.out, report);
  }
  std::unique_ptr<Network> net;
  Provenance base;
  if (!ta.init.empty()) {
    net = load_model(ta.init, &base);
    const ModelConfig& c = net->config();
    if (c.in_channels != train_set.images.dim(1) || c.height != train_set.images.dim(2) ||
        c.width != train_set.images.dim(3))
      throw std::invalid_argument("train: " + ta.init + " takes " + std::to_string(c.in_channels) +
                                  "x" + std::to_string(c.height) + "x" + std::to_string(c.width) +
                                  " input, " + train_set.name + " has " +
                                  shape_str(train_set.images.shape()));
  } else {
    ModelConfig cfg;
    cfg.arch = ta.arch;
    cfg.in_channels = static_cast<int>(train_set.images.dim(1));
    cfg.height = static_cast<int>(train_set.images.dim(2));
    cfg.width = static_cast<int>(train_set.images.dim(3));
    cfg.classes = train_set.num_classes;
    cfg.seed = g.seed;
    channel_stats(train_set, &cfg.mean, &cfg.std);
    net = make_network(cfg);
  }
  const ModelConfig cfg = net->config();
  std::string post;  // post-processing, for the recipe
  if (ta.reinit_last) {
    reinit_last_layer(*net, g.seed ^ 0x5EED1A57ull);
    post += ", last layer re-initialized";
  }
  TrainOptions opt = ta.opt;
  opt.seed = g.seed;
  opt.device = dev;
  opt.augment = ta.augment == "on" || (ta.augment == "auto" && ta.data.rfind("cifar", 0) == 0);
  if (ta.prune_weights > 0) {
    auto m = prune_weights(*net, ta.prune_weights);
    opt.masks.insert(opt.masks.end(), m.begin(), m.end());
    post += ", " + num(ta.prune_weights) + " of weights pruned";
  }
  if (ta.prune_filters > 0) {
    auto m = prune_filters(*net, ta.prune_filters);
    opt.masks.insert(opt.masks.end(), m.begin(), m.end());
    post += ", " + num(ta.prune_filters) + " of filters pruned per layer";
  }
  if (opt.last_layer_only) post += ", last layer only";
  if (opt.augment) post += ", crop+flip augmentation (pad " + std::to_string(opt.crop_pad) + ")";
  if (!ta.init.empty()) post = ", from " + ta.init + post;
  if (!g.json)
    std::cerr << (ta.init.empty() ? "training " : "fine-tuning ") << cfg.arch << " ("
              << net->num_parameters() << " parameters) on " << train_set.name << " ("
              << train_set.size() << " images), " << opt.epochs << " epochs, batch " << opt.batch
              << ", " << dev.str() << "\n";
  auto reports = train(
      *net, train_set, &test_set, opt,
      [&](const EpochReport& r) {
        if (g.json) return;
        std::fprintf(stderr,
                     "%sepoch %d/%d  lr %.4f  loss %.4f  train acc %.4f  test acc %.4f  %.0f "
                     "img/s  %.1f s\n",
                     tty ? "\r\033[K" : "", r.epoch, opt.epochs, r.lr, r.train_loss,
                     r.train_accuracy, r.test_accuracy, r.images_per_second, r.seconds);
      },
      [&](int epoch, int64_t done, int64_t total, double loss) {
        if (!tty || g.json) return;
        const int width = 30, fill = static_cast<int>(width * done / total);
        std::fprintf(stderr, "\r\033[Kepoch %d [%.*s%*s] %lld/%lld  loss %.4f", epoch, fill,
                     "##############################", width - fill, "", (long long)done,
                     (long long)total, loss);
      });
  Provenance p;
  p.data = ta.data;
  p.seed = static_cast<int64_t>(g.seed);
  p.epochs = opt.epochs;
  p.accuracy = reports.back().test_accuracy;
  p.recipe = opt.optimizer + " lr " + num(opt.lr) + " " + opt.schedule + ", batch " +
             std::to_string(opt.batch) + ", weight decay " + num(opt.weight_decay) +
             (ta.limit > 0 ? ", first " + std::to_string(ta.limit) + " images" : "") + post;
  net->to(Device::cpu());
  save_model(*net, ta.out, p);
  nlohmann::json out = {
      {"model", ta.out}, {"arch", cfg.arch}, {"test_accuracy", p.accuracy}, {"device", dev.str()}};
  for (const auto& r : reports)
    out["epochs"].push_back({{"epoch", r.epoch},
                             {"loss", r.train_loss},
                             {"train_accuracy", r.train_accuracy},
                             {"test_accuracy", r.test_accuracy},
                             {"seconds", r.seconds}});
  if (g.json)
    report << out.dump(2) << "\n";
  else
    report << "saved " << ta.out << " (test accuracy " << p.accuracy << ")\n";
  return 0;
}

void apply_attack(TrainArgs& t, const std::string& a) {
  auto fraction = [&](const std::string& prefix) {
    double f = 0;
    try {
      f = parse_number(a.substr(prefix.size()), "--attack " + a);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    if (!(f > 0 && f < 1))
      throw UsageError("--attack " + a + ": the fraction after '" + prefix + "' must be in (0, 1)");
    return f;
  };
  if (a == "ftll") {
    t.opt.last_layer_only = true;
  } else if (a == "ftal") {
  } else if (a == "rtll") {
    t.reinit_last = true;
    t.opt.last_layer_only = true;
  } else if (a == "rtal") {
    t.reinit_last = true;
  } else if (a.rfind("wp:", 0) == 0) {
    t.prune_weights = fraction("wp:");
  } else if (a.rfind("fp:", 0) == 0) {
    t.prune_filters = fraction("fp:");
  } else {
    throw UsageError("unknown --attack '" + a + "' (ftll, ftal, rtll, rtal, wp:P, fp:C)");
  }
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

void add_model_commands(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  // ---- train ----
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
  runners[train_cmd] = [&g, ta]() { return run_train(g, *ta, std::cout); };

  // ---- postprocess ----
  // The paper's positive suspects (section 5.1.2) by name; the same training as
  // `train --init` with the matching options.
  struct PostArgs {
    std::string model, attack, data = "fashion-mnist", out;
    TrainArgs train;
  };
  auto pa = std::make_shared<PostArgs>();
  pa->train.opt.epochs = 2;
  pa->train.opt.lr = 0.01;
  CLI::App* post_cmd = app.add_subcommand(
      "postprocess", "make a positive suspect: fine-tune, retrain the last layer, or prune");
  post_cmd->add_option("--model", pa->model, "the model to post-process (HDF5 network)")
      ->required();
  post_cmd
      ->add_option("--attack", pa->attack,
                   "ftll | ftal | rtll | rtal (fine-tune / re-initialize then train the last "
                   "layer or all layers) | wp:P (prune fraction P of weights) | fp:C (prune "
                   "fraction C of filters per layer), then retrain")
      ->required();
  data_spec(post_cmd->add_option("--data", pa->data, "training data (dataset spec)")
                ->capture_default_str());
  post_cmd->add_option("--out", pa->out, "suspect model file to write (HDF5)")->required();
  at_least(post_cmd->add_option("--epochs", pa->train.opt.epochs, "epochs of (re)training")
               ->capture_default_str(),
           1);
  positive(
      post_cmd->add_option("--lr", pa->train.opt.lr, "peak learning rate")->capture_default_str());
  at_least(
      post_cmd->add_option("--batch", pa->train.opt.batch, "batch size")->capture_default_str(), 1);
  at_least(
      post_cmd->add_option("--limit", pa->train.limit, "train on the first N images only (0: all)"),
      0);
  runners[post_cmd] = [&g, pa]() {
    TrainArgs t = pa->train;
    t.init = pa->model;
    t.init_flag = "--model";
    t.data = pa->data;
    t.out = pa->out;
    apply_attack(t, pa->attack);
    return run_train(g, t, std::cout);
  };

  // ---- eval ----
  struct EvalArgs {
    std::string model, data = "fashion-mnist";
    int batch = 500;
  };
  auto ea = std::make_shared<EvalArgs>();
  CLI::App* eval_cmd = app.add_subcommand("eval", "accuracy of a model on a dataset's test split");
  eval_cmd->add_option("--model", ea->model, "model file (HDF5)")->required();
  data_spec(eval_cmd->add_option("--data", ea->data, "dataset spec (see train --help)")
                ->capture_default_str());
  at_least(eval_cmd->add_option("--batch", ea->batch, "batch size")->capture_default_str(), 1);
  runners[eval_cmd] = [&g, ea]() {
    const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    auto model = load_classifier(ea->model);
    const Dataset test_set = load_dataset(ea->data, Split::Test);
    const double acc = evaluate(*model, test_set, dev, ea->batch);
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
  CLI::App* info_cmd = app.add_subcommand("info", "describe a model file");
  info_cmd->add_option("model", *path, "model file (HDF5)")->required();
  runners[info_cmd] = [&g, path]() {
    if (is_forest_file(*path)) return forest_info(g, *path);
    const ModelInfo info = read_model_info(*path);
    const ModelConfig& c = info.config;
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
    return 0;
  };
}

}  // namespace ipg::cli
