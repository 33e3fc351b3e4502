// LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, as commonly trained on MNIST-like
// data: the first convolution pads by 2 so a 28x28 input keeps the classic 32x32 geometry.
#include <stdexcept>

#include "engine/nn/layers.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/view.h"
#include "models/architectures.h"

namespace ipg {

namespace {

class LeNet5 : public Network {
 public:
  explicit LeNet5(const ModelConfig& cfg)
      : Network(cfg),
        gen_(cfg.seed),
        conv1_(add_module("conv1",
                          std::make_shared<nn::Conv2d>(cfg.in_channels, 6, 5, 1, 2, true, gen_))),
        conv2_(add_module("conv2", std::make_shared<nn::Conv2d>(6, 16, 5, 1, 0, true, gen_))),
        fc1_(add_module(
            "fc1", std::make_shared<nn::Linear>(16 * out_size(cfg.height) * out_size(cfg.width),
                                                120, true, gen_))),
        fc2_(add_module("fc2", std::make_shared<nn::Linear>(120, 84, true, gen_))),
        fc3_(add_module("fc3", std::make_shared<nn::Linear>(84, cfg.classes, true, gen_))) {}

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"fc3/weight", &fc3_.weight}, {"fc3/bias", fc3_.bias}};
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = ops::max_pool2d(ops::relu(conv1_.forward(x)), 2, 2);
    h = ops::max_pool2d(ops::relu(conv2_.forward(h)), 2, 2);
    h = ops::relu(fc1_.forward(ops::flatten(h)));
    h = ops::relu(fc2_.forward(h));
    return fc3_.forward(h);
  }

 private:
  // Spatial size after conv1 (same) - pool - conv2 (valid 5x5) - pool.
  static int64_t out_size(int64_t s) {
    const int64_t after = (s / 2 - 4) / 2;
    if (s / 2 - 4 < 2) throw std::invalid_argument("lenet5: input side must be at least 12");
    return after;
  }
  Generator gen_;
  nn::Conv2d& conv1_;
  nn::Conv2d& conv2_;
  nn::Linear& fc1_;
  nn::Linear& fc2_;
  nn::Linear& fc3_;
};

}  // namespace

std::unique_ptr<Network> make_lenet5(const ModelConfig& cfg) {
  return std::make_unique<LeNet5>(cfg);
}

}  // namespace ipg
