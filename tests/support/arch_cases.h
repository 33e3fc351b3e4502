// The architectures the frozen-network tests run on the CPU and on CUDA, built the same
// way each time (seeded weights, batch-norm statistics randomized so that folding them
// into the convolutions is exercised), so two builds hold the same weights.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "models/network.h"
#include "tests/support/batchnorm_stats.h"

namespace ipg::testing {

struct ArchCase {
  std::string arch;
  int channels, side;
};

inline std::unique_ptr<Network> build_arch(const ArchCase& c) {
  ModelConfig cfg;
  cfg.arch = c.arch;
  cfg.in_channels = c.channels;
  cfg.height = cfg.width = c.side;
  cfg.classes = 10;
  cfg.seed = 5;
  if (c.channels == 3) {
    cfg.mean = {0.4f, 0.5f, 0.6f};
    cfg.std = {0.2f, 0.25f, 0.3f};
  } else {
    cfg.mean = {0.3f};
    cfg.std = {0.35f};
  }
  auto net = make_network(cfg);
  randomize_batch_norm(*net, 9);
  return net;
}

// A LeNet-5 with weights drawn from `seed` (the extraction tests' target).
inline std::unique_ptr<Network> seeded_lenet5(uint64_t seed = 3) {
  ModelConfig cfg;
  cfg.arch = "lenet5";
  cfg.seed = seed;
  return make_network(cfg);
}

inline void PrintTo(const ArchCase& c, std::ostream* os) {
  *os << c.arch << " " << c.channels << "x" << c.side << "x" << c.side;
}

// A test name: "resnet20_c1".
inline std::string arch_case_name(const ArchCase& c) {
  std::string name = c.arch + "_c" + std::to_string(c.channels);
  for (char& ch : name)
    if (ch == '-') ch = '_';
  return name;
}

}  // namespace ipg::testing
