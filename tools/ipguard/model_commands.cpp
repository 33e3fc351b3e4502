// `ipguard train`, `ipguard eval` and `ipguard info`: thin wrappers over models/.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/data/dataset.h"
#include "models/model_file.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"

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

// The first `limit` rows of a dataset (all when limit <= 0), sharing storage.
Dataset head(const Dataset& d, int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return d;
  Dataset h = d;
  h.images = d.images.narrow0(0, limit);
  h.labels = d.labels.narrow0(0, limit);
  return h;
}

}  // namespace

void add_model_commands(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  // ---- train ----
  struct TrainArgs {
    std::string arch, data = "fashion-mnist", out;
    TrainOptions opt;
    int64_t limit = 0;
  };
  auto ta = std::make_shared<TrainArgs>();
  CLI::App* train_cmd = app.add_subcommand("train", "train a model on a dataset and save it");
  train_cmd->add_option("--arch", ta->arch, "lenet5 | resnet20 | wrn-22-4 | resnet50 | vgg16")
      ->required();
  train_cmd
      ->add_option("--data", ta->data,
                   "fashion-mnist[:DIR] | mnist:DIR | cifar10:DIR | cifar100:DIR")
      ->capture_default_str();
  train_cmd->add_option("--out", ta->out, "model file to write (HDF5)")->required();
  train_cmd->add_option("--epochs", ta->opt.epochs, "epochs")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--batch", ta->opt.batch, "batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--lr", ta->opt.lr, "peak learning rate")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--momentum", ta->opt.momentum, "SGD momentum")->capture_default_str();
  train_cmd->add_option("--weight-decay", ta->opt.weight_decay, "L2 weight decay")
      ->capture_default_str();
  train_cmd->add_option("--optimizer", ta->opt.optimizer, "sgd | adam")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "adam"}));
  train_cmd->add_option("--schedule", ta->opt.schedule, "cosine | step | constant")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "step", "constant"}));
  train_cmd->add_option("--limit", ta->limit, "train on the first N images only (quick runs)");
  runners[train_cmd] = [&g, ta]() {
    const bool tty = ::isatty(2);
    const Device dev = resolve_device(g.device, &std::cerr);
    const Dataset train_set = head(load_dataset(ta->data, Split::Train), ta->limit);
    const Dataset test_set = load_dataset(ta->data, Split::Test);
    ModelConfig cfg;
    cfg.arch = ta->arch;
    cfg.in_channels = static_cast<int>(train_set.images.dim(1));
    cfg.height = static_cast<int>(train_set.images.dim(2));
    cfg.width = static_cast<int>(train_set.images.dim(3));
    cfg.classes = train_set.num_classes;
    cfg.seed = g.seed;
    channel_stats(train_set, &cfg.mean, &cfg.std);
    auto net = make_network(cfg);
    TrainOptions opt = ta->opt;
    opt.seed = g.seed;
    opt.device = dev;
    if (!g.json)
      std::cerr << "training " << cfg.arch << " (" << net->num_parameters() << " parameters) on "
                << train_set.name << " (" << train_set.size() << " images), " << opt.epochs
                << " epochs, batch " << opt.batch << ", " << dev.str() << "\n";
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
    p.data = ta->data;
    p.seed = static_cast<int64_t>(g.seed);
    p.epochs = opt.epochs;
    p.accuracy = reports.back().test_accuracy;
    p.recipe = opt.optimizer + " lr " + std::to_string(opt.lr) + " " + opt.schedule + ", batch " +
               std::to_string(opt.batch) + ", weight decay " + std::to_string(opt.weight_decay) +
               (ta->limit > 0 ? ", first " + std::to_string(ta->limit) + " images" : "");
    net->to(Device::cpu());
    save_model(*net, ta->out, p);
    nlohmann::json out = {{"model", ta->out},
                          {"arch", cfg.arch},
                          {"test_accuracy", p.accuracy},
                          {"device", dev.str()}};
    for (const auto& r : reports)
      out["epochs"].push_back({{"epoch", r.epoch},
                               {"loss", r.train_loss},
                               {"train_accuracy", r.train_accuracy},
                               {"test_accuracy", r.test_accuracy},
                               {"seconds", r.seconds}});
    if (g.json)
      std::cout << out.dump(2) << "\n";
    else
      std::cout << "saved " << ta->out << " (test accuracy " << p.accuracy << ")\n";
    return 0;
  };

  // ---- eval ----
  struct EvalArgs {
    std::string model, data = "fashion-mnist";
    int batch = 500;
  };
  auto ea = std::make_shared<EvalArgs>();
  CLI::App* eval_cmd = app.add_subcommand("eval", "accuracy of a model on a dataset's test split");
  eval_cmd->add_option("--model", ea->model, "model file (HDF5)")->required();
  eval_cmd->add_option("--data", ea->data, "dataset spec (see train --help)")
      ->capture_default_str();
  eval_cmd->add_option("--batch", ea->batch, "batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  runners[eval_cmd] = [&g, ea]() {
    const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    auto net = load_model(ea->model);
    const Dataset test_set = load_dataset(ea->data, Split::Test);
    net->to(dev);
    const double acc = evaluate(*net, test_set, dev, ea->batch);
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
