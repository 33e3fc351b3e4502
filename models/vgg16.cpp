// VGG16 (Simonyan and Zisserman 2015). Two variants:
//  - "vgg16": the CIFAR recipe: 13 conv3x3 with batch norm, global average pool, one
//    linear layer. A max pool is skipped when the map is already 1 pixel wide, so 28x28
//    inputs (Fashion-MNIST) work: 28-14-7-3-1-1.
//  - "vgg16-imagenet": Keras applications layout (block{b}_conv{i}, fc1, fc2,
//    predictions), no batch norm, dropout 0.5 after fc1 and fc2 in training mode.
#include <map>
#include <stdexcept>

#include "engine/nn/layers.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/view.h"
#include "models/architectures.h"

namespace ipg {

namespace {

constexpr int kBlocks[5] = {2, 2, 3, 3, 3};
constexpr int64_t kWidths[5] = {64, 128, 256, 512, 512};

Tensor pool_if_possible(const Tensor& h) {
  return (h.dim(2) >= 2 && h.dim(3) >= 2) ? ops::max_pool2d(h, 2, 2) : h;
}

class Vgg16 : public Network {
 public:
  Vgg16(const ModelConfig& cfg, bool imagenet)
      : Network(cfg), gen_(cfg.seed ^ 0x5eed), imagenet_(imagenet) {
    Generator init(cfg.seed);
    int64_t in = cfg.in_channels;
    int64_t h = cfg.height, w = cfg.width;
    for (int b = 0; b < 5; ++b) {
      for (int i = 0; i < kBlocks[b]; ++i) {
        const std::string name = "block" + std::to_string(b + 1) + "/conv" + std::to_string(i + 1);
        Layer l;
        auto conv = std::make_shared<nn::Conv2d>(in, kWidths[b], 3, 1, 1, true, init);
        l.conv = conv.get();
        add_named(name, conv);
        if (!imagenet) {
          auto bn = std::make_shared<nn::BatchNorm2d>(kWidths[b]);
          l.bn = bn.get();
          add_named(name + "_bn", bn);
        }
        layers_.push_back(l);
        in = kWidths[b];
      }
      layers_.back().pool_after = true;
      if (h >= 2 && w >= 2) h /= 2, w /= 2;
    }
    if (imagenet) {
      fc1_ = &add_module("fc1", std::make_shared<nn::Linear>(in * h * w, 4096, true, init));
      fc2_ = &add_module("fc2", std::make_shared<nn::Linear>(4096, 4096, true, init));
      head_ =
          &add_module("predictions", std::make_shared<nn::Linear>(4096, cfg.classes, true, init));
    } else {
      head_ = &add_module("linear", std::make_shared<nn::Linear>(in, cfg.classes, true, init));
    }
  }

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    const std::string n = imagenet_ ? "predictions" : "linear";
    return {{n + "/weight", &head_->weight}, {n + "/bias", head_->bias}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = x;
    for (const Layer& l : layers_) {
      h = l.conv->forward(h);
      if (l.bn) h = l.bn->forward(h);
      h = ops::relu(h);
      if (l.pool_after) h = pool_if_possible(h);
    }
    if (!imagenet_) return head_->forward(ops::global_avg_pool2d(h));
    h = ops::dropout(ops::relu(fc1_->forward(ops::flatten(h))), 0.5f, is_training(), gen_);
    h = ops::dropout(ops::relu(fc2_->forward(h)), 0.5f, is_training(), gen_);
    return head_->forward(h);
  }

 private:
  struct Layer {
    nn::Conv2d* conv = nullptr;
    nn::BatchNorm2d* bn = nullptr;
    bool pool_after = false;
  };
  // "block1/conv1" registers as module "block1" > "conv1": one Module per block.
  template <class M>
  void add_named(const std::string& path, std::shared_ptr<M> m) {
    const auto slash = path.find('/');
    const std::string block = path.substr(0, slash);
    auto it = blocks_.find(block);
    if (it == blocks_.end()) {
      auto holder = std::make_shared<Holder>();
      it = blocks_.emplace(block, holder.get()).first;
      add_module(block, holder);
    }
    it->second->add(path.substr(slash + 1), m);
  }
  struct Holder : nn::Module {
    template <class M>
    void add(const std::string& name, std::shared_ptr<M> m) {
      add_module(name, m);
    }
  };
  Generator gen_;  // dropout masks
  bool imagenet_;
  std::vector<Layer> layers_;
  std::map<std::string, Holder*> blocks_;
  nn::Linear* fc1_ = nullptr;
  nn::Linear* fc2_ = nullptr;
  nn::Linear* head_ = nullptr;
};

}  // namespace

std::unique_ptr<Network> make_vgg16(const ModelConfig& cfg) {
  return std::make_unique<Vgg16>(cfg, false);
}
std::unique_ptr<Network> make_vgg16_imagenet(const ModelConfig& cfg) {
  return std::make_unique<Vgg16>(cfg, true);
}

}  // namespace ipg
