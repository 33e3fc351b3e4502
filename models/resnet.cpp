// Residual networks: CIFAR ResNet20 (He et al. 2016, basic blocks), WRN-22-4 (Zagoruyko
// and Komodakis 2016, pre-activation blocks) and ResNet50 in the Keras applications v1
// layout (bottleneck blocks with the stride on the first 1x1 convolution).
#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "models/architectures.h"

namespace ipg {

namespace {

template <class M, class... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

// conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) -ReLU. The shortcut is a 1x1 convolution with
// BN when the shape changes (PyTorch CIFAR layout "shortcut/0", "shortcut/1").
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int64_t in, int64_t out, int stride, Generator& gen)
      : conv1(add_module("conv1", make<nn::Conv2d>(in, out, 3, stride, 1, false, gen))),
        bn1(add_module("bn1", make<nn::BatchNorm2d>(out))),
        conv2(add_module("conv2", make<nn::Conv2d>(out, out, 3, 1, 1, false, gen))),
        bn2(add_module("bn2", make<nn::BatchNorm2d>(out))) {
    if (stride != 1 || in != out) {
      auto sc = make<Shortcut>(in, out, stride, gen);
      shortcut = sc.get();
      add_module("shortcut", sc);
    }
  }
  Tensor forward(const Tensor& x) {
    Tensor h = ops::relu(bn1.forward(conv1.forward(x)));
    h = bn2.forward(conv2.forward(h));
    return ops::relu(ops::add(h, shortcut ? shortcut->forward(x) : x));
  }

 private:
  struct Shortcut : nn::Module {
    Shortcut(int64_t in, int64_t out, int stride, Generator& gen)
        : conv(add_module("0", make<nn::Conv2d>(in, out, 1, stride, 0, false, gen))),
          bn(add_module("1", make<nn::BatchNorm2d>(out))) {}
    Tensor forward(const Tensor& x) { return bn.forward(conv.forward(x)); }
    nn::Conv2d& conv;
    nn::BatchNorm2d& bn;
  };
  nn::Conv2d& conv1;
  nn::BatchNorm2d& bn1;
  nn::Conv2d& conv2;
  nn::BatchNorm2d& bn2;
  Shortcut* shortcut = nullptr;
};

class ResNet20 : public Network {
 public:
  explicit ResNet20(const ModelConfig& cfg)
      : Network(cfg),
        gen_(cfg.seed),
        conv1_(add_module("conv1", make<nn::Conv2d>(cfg.in_channels, 16, 3, 1, 1, false, gen_))),
        bn1_(add_module("bn1", make<nn::BatchNorm2d>(16))) {
    int64_t in = 16;
    const int64_t widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; ++s) {
      auto stage = make<Stage>();
      for (int b = 0; b < 3; ++b) {
        auto block = make<BasicBlock>(in, widths[s], (s > 0 && b == 0) ? 2 : 1, gen_);
        stage->blocks.push_back(block.get());
        stage->add(std::to_string(b), block);
        in = widths[s];
      }
      stages_.push_back(stage.get());
      add_module("layer" + std::to_string(s + 1), stage);
    }
    linear_ = &add_module("linear", make<nn::Linear>(64, cfg.classes, true, gen_));
  }

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"linear/weight", &linear_->weight}, {"linear/bias", linear_->bias}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = ops::relu(bn1_.forward(conv1_.forward(x)));
    for (Stage* s : stages_)
      for (BasicBlock* b : s->blocks) h = b->forward(h);
    return linear_->forward(ops::global_avg_pool2d(h));
  }

 private:
  struct Stage : nn::Module {
    std::vector<BasicBlock*> blocks;
    void add(const std::string& name, std::shared_ptr<BasicBlock> b) { add_module(name, b); }
  };
  Generator gen_;
  nn::Conv2d& conv1_;
  nn::BatchNorm2d& bn1_;
  std::vector<Stage*> stages_;
  nn::Linear* linear_ = nullptr;
};

// Pre-activation wide block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus the input (or a 1x1
// convolution of the pre-activated input when the shape changes).
class WideBlock : public nn::Module {
 public:
  WideBlock(int64_t in, int64_t out, int stride, Generator& gen)
      : bn1(add_module("bn1", make<nn::BatchNorm2d>(in))),
        conv1(add_module("conv1", make<nn::Conv2d>(in, out, 3, stride, 1, false, gen))),
        bn2(add_module("bn2", make<nn::BatchNorm2d>(out))),
        conv2(add_module("conv2", make<nn::Conv2d>(out, out, 3, 1, 1, false, gen))) {
    if (stride != 1 || in != out)
      shortcut = &add_module("shortcut", make<nn::Conv2d>(in, out, 1, stride, 0, false, gen));
  }
  Tensor forward(const Tensor& x) {
    const Tensor o = ops::relu(bn1.forward(x));
    Tensor h = conv1.forward(o);
    h = conv2.forward(ops::relu(bn2.forward(h)));
    return ops::add(h, shortcut ? shortcut->forward(o) : x);
  }
  // bn2 and its ReLU fold into conv1; the sum has no ReLU (the next block's bn1 has).

 private:
  nn::BatchNorm2d& bn1;
  nn::Conv2d& conv1;
  nn::BatchNorm2d& bn2;
  nn::Conv2d& conv2;
  nn::Conv2d* shortcut = nullptr;
};

class WideResNet : public Network {
 public:
  WideResNet(const ModelConfig& cfg, int depth, int k)
      : Network(cfg),
        gen_(cfg.seed),
        conv1_(add_module("conv1", make<nn::Conv2d>(cfg.in_channels, 16, 3, 1, 1, false, gen_))) {
    const int n = (depth - 4) / 6;
    int64_t in = 16;
    for (int s = 0; s < 3; ++s) {
      const int64_t width = (int64_t{16} << s) * k;
      auto stage = make<Stage>();
      for (int b = 0; b < n; ++b) {
        auto block = make<WideBlock>(in, width, (s > 0 && b == 0) ? 2 : 1, gen_);
        stage->blocks.push_back(block.get());
        stage->add(std::to_string(b), block);
        in = width;
      }
      stages_.push_back(stage.get());
      add_module("block" + std::to_string(s + 1), stage);
    }
    bn_ = &add_module("bn", make<nn::BatchNorm2d>(in));
    fc_ = &add_module("fc", make<nn::Linear>(in, cfg.classes, true, gen_));
  }

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"fc/weight", &fc_->weight}, {"fc/bias", fc_->bias}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = conv1_.forward(x);
    for (Stage* s : stages_)
      for (WideBlock* b : s->blocks) h = b->forward(h);
    return fc_->forward(ops::global_avg_pool2d(ops::relu(bn_->forward(h))));
  }

 private:
  struct Stage : nn::Module {
    std::vector<WideBlock*> blocks;
    void add(const std::string& name, std::shared_ptr<WideBlock> b) { add_module(name, b); }
  };
  Generator gen_;
  nn::Conv2d& conv1_;
  std::vector<Stage*> stages_;
  nn::BatchNorm2d* bn_ = nullptr;
  nn::Linear* fc_ = nullptr;
};

// Keras ResNet50 uses BN epsilon 1.001e-5 and biased convolutions throughout.
constexpr float kKerasBnEps = 1.001e-5f;

// Keras "block1": 1x1 (stride s) - 3x3 - 1x1 (x4) with BN, plus a projected shortcut
// ("0_conv", "0_bn") in the first block of each stage.
class Bottleneck : public nn::Module {
 public:
  Bottleneck(int64_t in, int64_t filters, int stride, bool project, Generator& gen)
      : conv1(add_module("1_conv", make<nn::Conv2d>(in, filters, 1, stride, 0, true, gen))),
        bn1(add_module("1_bn", make<nn::BatchNorm2d>(filters, kKerasBnEps))),
        conv2(add_module("2_conv", make<nn::Conv2d>(filters, filters, 3, 1, 1, true, gen))),
        bn2(add_module("2_bn", make<nn::BatchNorm2d>(filters, kKerasBnEps))),
        conv3(add_module("3_conv", make<nn::Conv2d>(filters, 4 * filters, 1, 1, 0, true, gen))),
        bn3(add_module("3_bn", make<nn::BatchNorm2d>(4 * filters, kKerasBnEps))) {
    if (project) {
      conv0 = &add_module("0_conv", make<nn::Conv2d>(in, 4 * filters, 1, stride, 0, true, gen));
      bn0 = &add_module("0_bn", make<nn::BatchNorm2d>(4 * filters, kKerasBnEps));
    }
  }
  Tensor forward(const Tensor& x) {
    const Tensor sc = conv0 ? bn0->forward(conv0->forward(x)) : x;
    Tensor h = ops::relu(bn1.forward(conv1.forward(x)));
    h = ops::relu(bn2.forward(conv2.forward(h)));
    h = bn3.forward(conv3.forward(h));
    return ops::relu(ops::add(sc, h));
  }

 private:
  nn::Conv2d& conv1;
  nn::BatchNorm2d& bn1;
  nn::Conv2d& conv2;
  nn::BatchNorm2d& bn2;
  nn::Conv2d& conv3;
  nn::BatchNorm2d& bn3;
  nn::Conv2d* conv0 = nullptr;
  nn::BatchNorm2d* bn0 = nullptr;
};

class ResNet50 : public Network {
 public:
  explicit ResNet50(const ModelConfig& cfg) : Network(cfg), gen_(cfg.seed) {
    auto stem = make<Stem>(cfg.in_channels, gen_);
    stem_ = stem.get();
    add_module("conv1", stem);
    const int blocks[4] = {3, 4, 6, 3};
    int64_t in = 64;
    for (int s = 0; s < 4; ++s) {
      const int64_t filters = int64_t{64} << s;
      auto stage = make<Stage>();
      for (int b = 0; b < blocks[s]; ++b) {
        auto block = make<Bottleneck>(in, filters, (s > 0 && b == 0) ? 2 : 1, b == 0, gen_);
        stage->blocks.push_back(block.get());
        stage->add("block" + std::to_string(b + 1), block);
        in = 4 * filters;
      }
      stages_.push_back(stage.get());
      add_module("conv" + std::to_string(s + 2), stage);
    }
    fc_ = &add_module("predictions", make<nn::Linear>(in, cfg.classes, true, gen_));
  }

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"predictions/weight", &fc_->weight}, {"predictions/bias", fc_->bias}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = stem_->forward(x);
    for (Stage* s : stages_)
      for (Bottleneck* b : s->blocks) h = b->forward(h);
    return fc_->forward(ops::global_avg_pool2d(h));
  }

 private:
  // conv1_pad (3) - conv1_conv 7x7/2 valid - conv1_bn - relu - pool1_pad (1) - 3x3/2 max.
  struct Stem : nn::Module {
    Stem(int64_t in, Generator& gen)
        : conv(add_module("conv", make<nn::Conv2d>(in, 64, 7, 2, 0, true, gen))),
          bn(add_module("bn", make<nn::BatchNorm2d>(64, kKerasBnEps))) {}
    Tensor forward(const Tensor& x) {
      Tensor h = ops::relu(bn.forward(conv.forward(ops::zero_pad2d(x, 3, 3, 3, 3))));
      // Zero padding before the max pool (not -inf padding): after ReLU both give the same
      // result, and it is what Keras does.
      return ops::max_pool2d(ops::zero_pad2d(h, 1, 1, 1, 1), 3, 2, 0);
    }
    // Both paddings become the layers' own: zeros around the input of a conv are its
    // padding, and around a ReLU output a max pool's -inf padding gives the same maxima.
    nn::Conv2d& conv;
    nn::BatchNorm2d& bn;
  };
  struct Stage : nn::Module {
    std::vector<Bottleneck*> blocks;
    void add(const std::string& name, std::shared_ptr<Bottleneck> b) { add_module(name, b); }
  };
  Generator gen_;
  Stem* stem_ = nullptr;
  std::vector<Stage*> stages_;
  nn::Linear* fc_ = nullptr;
};

}  // namespace

std::unique_ptr<Network> make_resnet20(const ModelConfig& cfg) {
  return std::make_unique<ResNet20>(cfg);
}
std::unique_ptr<Network> make_wrn22_4(const ModelConfig& cfg) {
  return std::make_unique<WideResNet>(cfg, 22, 4);
}
std::unique_ptr<Network> make_resnet50(const ModelConfig& cfg) {
  return std::make_unique<ResNet50>(cfg);
}

}  // namespace ipg
