// The model file the fuzz input describes (tests/fuzz/fuzz_h5.h): a valid model file of a
// small architecture, then attributes, datasets and groups mutated as the input says.
// Shared by fuzz_model_file and the seed generator (make_fuzz_seeds.cpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "fuzz_h5.h"
#include "models/model_file.h"

namespace fuzz_model {

struct Base {
  ipg::ModelConfig cfg;
  std::vector<std::pair<std::string, ipg::Shape>> tensors;  // "params/..." and "buffers/..."
};

inline ipg::ModelConfig config(const char* arch, int c, int h, int w, int classes) {
  ipg::ModelConfig cfg;
  cfg.arch = arch;
  cfg.in_channels = c;
  cfg.height = h;
  cfg.width = w;
  cfg.classes = classes;
  cfg.mean.assign(static_cast<size_t>(c), 0.25f);
  cfg.std.assign(static_cast<size_t>(c), 0.5f);
  return cfg;
}

// The valid files the mutations start from: names and shapes of every tensor.
inline const std::vector<Base>& bases() {
  static const std::vector<Base> b = [] {
    std::vector<Base> out;
    for (const auto& cfg : {config("lenet5", 1, 28, 28, 10), config("resnet20", 3, 32, 32, 10),
                            config("lenet5", 3, 16, 12, 3)}) {
      Base base{cfg, {}};
      auto net = ipg::make_network(cfg);
      for (auto& [name, t] : net->named_parameters())
        base.tensors.emplace_back("params/" + name, t->shape());
      for (auto& [name, t] : net->named_buffers())
        base.tensors.emplace_back("buffers/" + name, t->shape());
      out.push_back(std::move(base));
    }
    return out;
  }();
  return b;
}

inline const char* arch_name(FuzzedDataProvider& p, const std::string& right) {
  // resnet50, vgg16 and wrn-22-4 are left out: building one (millions of randomly
  // initialized weights) for every input would slow the fuzzer down a hundredfold, and
  // their files are read by the same code. vgg16-imagenet stays: its size grows with
  // the input side, so a small file claiming one must be refused before it is built.
  static const char* names[] = {"lenet5", "resnet20", "vgg16-imagenet", "",
                                "LeNet5", "lenet5 ",  "lenet5\x01",     "resnet20/"};
  const int m = fuzz::mutation(p, 8);
  return m == 0 ? right.c_str() : names[m - 1];
}

// Builds the file for one input (everything but finish()).
inline void build(FuzzedDataProvider& p, const std::string& path) {
  const Base& base = bases()[p.ConsumeIntegralInRange<size_t>(0, bases().size() - 1)];
  const ipg::ModelConfig& cfg = base.cfg;
  fuzz::Id f = fuzz::create_file(path);
  if (!f.ok()) return;
  const hid_t root = f.id;
  fuzz::attr_string(p, root, "format", "ipguard-model");
  fuzz::attr_int(p, root, "version", 1);
  {
    const std::string arch = arch_name(p, cfg.arch);
    fuzz::attr_string(p, root, "arch", arch);
  }
  fuzz::attr_int(p, root, "in_channels", cfg.in_channels);
  fuzz::attr_int(p, root, "height", cfg.height);
  fuzz::attr_int(p, root, "width", cfg.width);
  fuzz::attr_int(p, root, "classes", cfg.classes);
  fuzz::attr_floats(p, root, "mean", std::vector<double>(cfg.mean.begin(), cfg.mean.end()));
  fuzz::attr_floats(p, root, "std", std::vector<double>(cfg.std.begin(), cfg.std.end()));
  // Provenance is optional: absent unless the input asks.
  if (p.ConsumeBool()) fuzz::attr_string(p, root, "data", "fashion-mnist");
  if (p.ConsumeBool()) fuzz::attr_int(p, root, "seed", 3);
  if (p.ConsumeBool()) fuzz::attr_int(p, root, "epochs", 2);
  if (p.ConsumeBool()) fuzz::attr_double(p, root, "accuracy", 0.9);
  if (p.ConsumeBool()) fuzz::attr_string(p, root, "recipe", "sgd");

  // The /params and /buffers groups themselves: present, or a dataset, or a link.
  for (const char* g : {"/params", "/buffers"}) {
    switch (fuzz::mutation(p, 3)) {
      case 1: {
        std::vector<double> v{1};
        fuzz::make_dataset(root, g, {1}, H5T_IEEE_F32LE, &v);
        break;
      }
      case 2:
        H5Lcreate_soft(g[1] == 'p' ? "/buffers" : "/params", root, g, fuzz::link_plist(),
                       H5P_DEFAULT);
        break;
      case 3:
        H5Lcreate_soft("/missing", root, g, fuzz::link_plist(), H5P_DEFAULT);
        break;
      default:
        break;
    }
  }
  for (const auto& [name, shape] : base.tensors) {
    fuzz::Dims dims(shape.begin(), shape.end());
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<double> values(n);
    // Small finite weights; running variances (and everything else) positive.
    for (size_t i = 0; i < n; ++i) values[i] = 0.01 * static_cast<double>(i % 13 + 1);
    fuzz::dataset(p, root, "/" + name, dims, fuzz::Kind::F32, std::move(values));
  }
  fuzz::extras(p, root, "/params");
  fuzz::extras(p, root, "/buffers");
  fuzz::extras(p, root, "");
  fuzz::close_file(f);
}

}  // namespace fuzz_model
