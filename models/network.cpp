// Network base: input checks and normalization, and the architecture registry.
#include "models/network.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "models/architectures.h"

namespace ipg {

Network::Network(ModelConfig cfg) : cfg_(std::move(cfg)) {
  const size_t c = static_cast<size_t>(cfg_.in_channels);
  if (cfg_.mean.empty()) cfg_.mean.assign(c, 0.f);
  if (cfg_.std.empty()) cfg_.std.assign(c, 1.f);
  if (cfg_.mean.size() != c || cfg_.std.size() != c)
    throw std::invalid_argument(cfg_.arch + ": mean/std need one value per input channel (" +
                                std::to_string(c) + ")");
  std::vector<float> inv(c);
  for (size_t i = 0; i < c; ++i) {
    if (!(cfg_.std[i] > 0.f)) throw std::invalid_argument(cfg_.arch + ": std must be positive");
    inv[i] = 1.f / cfg_.std[i];
  }
  const Shape s{1, cfg_.in_channels, 1, 1};
  mean_ = Tensor::from_vector(cfg_.mean, s);
  inv_std_ = Tensor::from_vector(inv, s);
}

Tensor Network::logits(const Tensor& batch) {
  if (batch.ndim() != 4 || batch.dim(1) != cfg_.in_channels || batch.dim(2) != cfg_.height ||
      batch.dim(3) != cfg_.width)
    throw ShapeError(cfg_.arch + ": input " + shape_str(batch.shape()) + " does not match [n, " +
                     std::to_string(cfg_.in_channels) + ", " + std::to_string(cfg_.height) + ", " +
                     std::to_string(cfg_.width) + "]");
  if (mean_.device() != batch.device()) {
    mean_ = mean_.to(batch.device());
    inv_std_ = inv_std_.to(batch.device());
  }
  return forward_normalized(ops::mul(ops::sub(batch, mean_), inv_std_));
}

Tensor Network::labels(const Tensor& batch) {
  NoGradGuard no_grad;
  return ops::argmax(logits(batch));
}

namespace {
using Factory = std::function<std::unique_ptr<Network>(const ModelConfig&)>;
const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> r = {
      {"lenet5", make_lenet5},    {"resnet20", make_resnet20},
      {"wrn-22-4", make_wrn22_4}, {"resnet50", make_resnet50},
      {"vgg16", make_vgg16},      {"vgg16-imagenet", make_vgg16_imagenet},
  };
  return r;
}
}  // namespace

double min_parameters(const ModelConfig& cfg) {
  const double classes = std::max(cfg.classes, 0);
  if (cfg.arch == "lenet5") {
    const double side_h = std::max((cfg.height / 2 - 4) / 2, 0);
    const double side_w = std::max((cfg.width / 2 - 4) / 2, 0);
    return 120.0 * 16.0 * side_h * side_w + 84.0 * classes;
  }
  if (cfg.arch == "vgg16-imagenet") {
    double h = std::max(cfg.height, 0), w = std::max(cfg.width, 0);
    for (int b = 0; b < 5; ++b)
      if (h >= 2 && w >= 2) h = std::floor(h / 2), w = std::floor(w / 2);
    return 4096.0 * 512.0 * h * w + 4096.0 * classes;
  }
  if (cfg.arch == "resnet20") return 64.0 * classes;
  if (cfg.arch == "wrn-22-4") return 256.0 * classes;
  if (cfg.arch == "vgg16") return 512.0 * classes;
  if (cfg.arch == "resnet50") return 2048.0 * classes;
  return 0;
}

std::vector<std::string> network_names() {
  std::vector<std::string> names;
  for (const auto& kv : registry()) names.push_back(kv.first);
  return names;
}

std::unique_ptr<Network> make_network(const ModelConfig& cfg) {
  const auto it = registry().find(cfg.arch);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : network_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown architecture '" + cfg.arch + "' (known: " + known + ")");
  }
  if (cfg.in_channels <= 0 || cfg.height <= 0 || cfg.width <= 0 || cfg.classes < 2 ||
      cfg.height > 4096 || cfg.width > 4096 || cfg.in_channels > 64 || cfg.classes > 100000)
    throw std::invalid_argument(cfg.arch + ": implausible input " +
                                std::to_string(cfg.in_channels) + "x" + std::to_string(cfg.height) +
                                "x" + std::to_string(cfg.width) + " or class count " +
                                std::to_string(cfg.classes));
  return it->second(cfg);
}

}  // namespace ipg
