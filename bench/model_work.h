// Shared by bench_models and bench_train: the architectures benchmarked, their inputs,
// and the hand-counted work of one image (the multiply-adds of every convolution and
// linear layer, times 2), walked from each architecture's layer shapes as models/*.cpp
// builds them. The walk is checked against the network it describes: the weights it
// lists must have the same total size as the network's convolution and linear weights
// (throws otherwise), so a change of architecture cannot silently skew FLOP/s.
// Not counted: biases, batch norm, ReLU, pooling, the residual adds, the loss (all
// memory-bound and together a few % of the FLOPs).
#pragma once

#include <stdint.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/model_file.h"
#include "models/network.h"

namespace ipg::bench {

struct ArchSpec {
  const char* arch;
  int64_t channels, side;
};

// LeNet-5, ResNet20, WRN-22-4 and VGG16 (CIFAR head) on 1x28x28 (Fashion-MNIST); ResNet50
// (Keras layout) on 3x64x64: at 224x224 one image is ~8 GFLOP forward, a batch of 100
// ~0.8 TFLOP, minutes per iteration on two cores.
inline const std::vector<ArchSpec>& bench_archs() {
  static const std::vector<ArchSpec> a = {{"lenet5", 1, 28},
                                          {"resnet20", 1, 28},
                                          {"wrn-22-4", 1, 28},
                                          {"vgg16", 1, 28},
                                          {"resnet50", 3, 64}};
  return a;
}

struct ModelWork {
  double forward_flops = 0;      // per image: 2 x multiply-adds of conv + linear layers
  double first_layer_flops = 0;  // per image, the first convolution (no dX in training)
  double weights = 0;            // conv + linear weight elements (the check)
};

class FlopWalk {
 public:
  FlopWalk(int64_t c, int64_t h, int64_t w) : c_(c), h_(h), w_(w) {}
  // A convolution on the current map; moves the map unless `branch` (a shortcut that
  // reads the same input as the main path).
  void conv(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool branch = false) {
    if (in != c_) throw std::logic_error("flop walk: channel mismatch");
    const int64_t ho = (h_ + 2 * p - k) / s + 1, wo = (w_ + 2 * p - k) / s + 1;
    const double f = 2.0 * double(out * in * k * k) * double(ho * wo);
    if (work_.forward_flops == 0) work_.first_layer_flops = f;
    work_.forward_flops += f;
    work_.weights += double(out * in * k * k);
    if (!branch) c_ = out, h_ = ho, w_ = wo;
  }
  void pad(int64_t p) { h_ += 2 * p, w_ += 2 * p; }
  void pool(int64_t k, int64_t s) { h_ = (h_ - k) / s + 1, w_ = (w_ - k) / s + 1; }
  void global_pool() { h_ = w_ = 1; }
  void set_channels(int64_t c) { c_ = c; }
  void linear(int64_t in, int64_t out) {
    if (in != c_ * h_ * w_) throw std::logic_error("flop walk: linear input mismatch");
    work_.forward_flops += 2.0 * double(in * out);
    work_.weights += double(in * out);
    c_ = out, h_ = w_ = 1;
  }
  int64_t channels() const { return c_; }
  int64_t height() const { return h_; }
  const ModelWork& work() const { return work_; }

 private:
  int64_t c_, h_, w_;
  ModelWork work_;
};

// The per-image work of models/<arch>.cpp's forward on a c x side x side input.
inline ModelWork model_work(const std::string& arch, int64_t c, int64_t side, int64_t classes) {
  FlopWalk f(c, side, side);
  if (arch == "lenet5") {
    f.conv(c, 6, 5, 1, 2);
    f.pool(2, 2);
    f.conv(6, 16, 5, 1, 0);
    f.pool(2, 2);
    f.linear(16 * f.height() * f.height(), 120);
    f.linear(120, 84);
    f.linear(84, classes);
  } else if (arch == "resnet20" || arch == "wrn-22-4") {
    const bool wrn = arch != "resnet20";
    f.conv(c, 16, 3, 1, 1);
    int64_t in = 16;
    for (int s = 0; s < 3; ++s) {
      const int64_t width = wrn ? (int64_t{16} << s) * 4 : (int64_t{16} << s);
      for (int b = 0; b < 3; ++b) {
        const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
        if (stride != 1 || in != width) f.conv(in, width, 1, stride, 0, /*branch=*/true);
        f.conv(in, width, 3, stride, 1);
        f.conv(width, width, 3, 1, 1);
        in = width;
      }
    }
    f.global_pool();
    f.linear(in, classes);
  } else if (arch == "resnet50") {
    f.pad(3);
    f.conv(c, 64, 7, 2, 0);
    f.pad(1);
    f.pool(3, 2);
    const int blocks[4] = {3, 4, 6, 3};
    int64_t in = 64;
    for (int s = 0; s < 4; ++s) {
      const int64_t filters = int64_t{64} << s;
      for (int b = 0; b < blocks[s]; ++b) {
        const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
        if (b == 0) f.conv(in, 4 * filters, 1, stride, 0, /*branch=*/true);
        f.conv(in, filters, 1, stride, 0);
        f.conv(filters, filters, 3, 1, 1);
        f.conv(filters, 4 * filters, 1, 1, 0);
        in = 4 * filters;
      }
    }
    f.global_pool();
    f.linear(in, classes);
  } else if (arch == "vgg16") {
    const int blocks[5] = {2, 2, 3, 3, 3};
    const int64_t widths[5] = {64, 128, 256, 512, 512};
    int64_t in = c;
    for (int b = 0; b < 5; ++b) {
      for (int i = 0; i < blocks[b]; ++i) f.conv(in, widths[b], 3, 1, 1), in = widths[b];
      if (f.height() >= 2) f.pool(2, 2);
    }
    f.global_pool();
    f.linear(in, classes);
  } else {
    throw std::invalid_argument("model_work: no FLOP walk for " + arch);
  }
  return f.work();
}

// The walk's weights against the network's own convolution and linear weights.
inline void check_work(Network& net, const ModelWork& w) {
  double n = 0;
  for (const auto& [path, t] : net.named_parameters())
    if (t->ndim() == 4 || t->ndim() == 2) n += double(t->numel());
  if (n != w.weights)
    throw std::logic_error(net.arch() + ": FLOP walk lists " + std::to_string(w.weights) +
                           " conv/linear weights, the network has " + std::to_string(n));
}

// The network benchmarked: the model file in $IPG_BENCH_WEIGHTS when it holds this
// architecture (compare_torch.py --weights), else seeded initialization (seed 1); written
// to $IPG_BENCH_MODELS_DIR/<arch>.h5 when that is set, so that compare_torch.py loads the
// very same weights into the PyTorch twin.
inline std::unique_ptr<Network> bench_network(const ArchSpec& a, int64_t classes) {
  if (const char* path = std::getenv("IPG_BENCH_WEIGHTS"); path && *path) {
    if (read_model_info(path).config.arch == a.arch) return load_model(path);
  }
  ModelConfig cfg;
  cfg.arch = a.arch;
  cfg.in_channels = static_cast<int>(a.channels);
  cfg.height = cfg.width = static_cast<int>(a.side);
  cfg.classes = static_cast<int>(classes);
  cfg.seed = 1;
  std::unique_ptr<Network> net = make_network(cfg);
  if (const char* dir = std::getenv("IPG_BENCH_MODELS_DIR"); dir && *dir)
    save_model(*net, std::string(dir) + "/" + a.arch + ".h5");
  return net;
}

// Which configurations run on the CPU: an iteration of at most this many FLOPs, a few
// seconds on the 2-core development machine (forward ~40-100 GFLOP/s there, the backward
// passes ~20-40). Skipped on the CPU: wrn-22-4 input_grad at b=100 and 256 and forward at
// 256, vgg16 input_grad at 256, resnet50 at 256; training steps of wrn-22-4 and resnet50.
constexpr double kCpuMaxFlopsPerIteration = 150e9;
constexpr double kCpuMaxFlopsPerTrainStep = 200e9;

}  // namespace ipg::bench
