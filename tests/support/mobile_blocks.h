// A small network of the mobile families' blocks, for the planner's activation and
// squeeze-and-excitation lowerings (tests/models/test_frozen_network*.cpp): a stem conv +
// batch norm + ReLU6 (its weights large, so that some outputs pass 6 and the cap is
// exercised), a depthwise conv + hard swish, a squeeze-and-excitation block gated by a
// hard sigmoid, a 1x1 projection + SiLU (sigmoid, then the product, as torch exports it),
// a second squeeze-and-excitation block with a SiLU inside and its hard sigmoid written
// as affine + clamp (MobileNetV3's export), and a head of two linear layers with a GELU
// between them. Seeded: two builds hold the same weights.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/ops/clamp.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/pool.h"
#include "engine/ops/view.h"
#include "engine/random.h"
#include "models/network.h"
#include "tests/support/batchnorm_stats.h"

namespace ipg::testing {

class MobileBlocks : public Network {
 public:
  explicit MobileBlocks(uint64_t seed = 11) : Network(default_config()), gen_(seed) {
    auto w = [&](const std::string& name, const Shape& s, float r) -> Tensor& {
      return add_parameter(name, Tensor::uniform(s, -r, r, gen_));
    };
    stem_w_ = &w("stem/weight", {16, 3, 3, 3}, 1.5f);
    stem_bn_ = &add_module("stem_bn", std::make_shared<nn::BatchNorm2d>(16));
    dw_w_ = &w("dw/weight", {16, 1, 3, 3}, 0.6f);
    dw_b_ = &w("dw/bias", {16}, 0.2f);
    se1_a_w_ = &w("se1a/weight", {4, 16, 1, 1}, 0.5f);
    se1_a_b_ = &w("se1a/bias", {4}, 0.2f);
    se1_b_w_ = &w("se1b/weight", {16, 4, 1, 1}, 0.8f);
    se1_b_b_ = &w("se1b/bias", {16}, 0.2f);
    proj_w_ = &w("proj/weight", {24, 16, 1, 1}, 0.4f);
    proj_b_ = &w("proj/bias", {24}, 0.1f);
    se2_a_w_ = &w("se2a/weight", {8, 24, 1, 1}, 0.5f);
    se2_a_b_ = &w("se2a/bias", {8}, 0.2f);
    se2_b_w_ = &w("se2b/weight", {24, 8, 1, 1}, 0.8f);
    se2_b_b_ = &w("se2b/bias", {24}, 0.2f);
    fc1_ = &add_module("fc1", std::make_shared<nn::Linear>(24, 32, true, gen_));
    fc2_ = &add_module("fc2", std::make_shared<nn::Linear>(32, 10, true, gen_));
    randomize_batch_norm(*this, seed + 1);
  }
  std::vector<nn::NamedTensor> last_layer_parameters() override {
    return {{"fc2/weight", &fc2_->weight}, {"fc2/bias", fc2_->bias}};
  }
  // The stem's output before its ReLU6, on normalized input: the test checks that some
  // of it lies above 6.
  Tensor stem(const Tensor& x) {
    ops::Conv2dParams p;
    p.stride_h = p.stride_w = 2;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    return stem_bn_->forward(ops::conv2d(x, *stem_w_, Tensor(), p));
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    Tensor h = ops::relu6(stem(x));
    ops::Conv2dParams dw;
    dw.pad_top = dw.pad_left = dw.pad_bottom = dw.pad_right = 1;
    dw.groups = 16;
    h = ops::hard_swish(ops::conv2d(h, *dw_w_, *dw_b_, dw));
    // Squeeze and excitation, PyTorch's hard sigmoid (alpha 1/6) as its own op.
    Tensor g = squeeze(h);
    g = ops::relu(ops::conv2d(g, *se1_a_w_, *se1_a_b_));
    g = ops::hard_sigmoid(ops::conv2d(g, *se1_b_w_, *se1_b_b_), 1.f / 6, 0.5f);
    h = ops::mul(g, h);
    h = ops::conv2d(h, *proj_w_, *proj_b_);
    h = ops::mul(h, ops::sigmoid(h));
    // Squeeze and excitation with SiLU inside and the hard sigmoid written out.
    g = ops::conv2d(squeeze(h), *se2_a_w_, *se2_a_b_);
    g = ops::mul(g, ops::sigmoid(g));
    g = ops::clamp(ops::affine(ops::conv2d(g, *se2_b_w_, *se2_b_b_), 1.f / 6, 0.5f), 0.f, 1.f);
    h = ops::mul(h, g);
    Tensor f = ops::gelu(fc1_->forward(ops::global_avg_pool2d(h)));
    return fc2_->forward(f);
  }

 private:
  static ModelConfig default_config() {
    ModelConfig c;
    c.arch = "mobile-blocks";
    c.in_channels = 3;
    c.height = c.width = 16;
    c.mean = {0.4f, 0.5f, 0.6f};
    c.std = {0.2f, 0.25f, 0.3f};
    return c;
  }
  // [n, C, H, W] -> [n, C, 1, 1], as an imported GlobalAveragePool traces.
  static Tensor squeeze(const Tensor& h) {
    const Tensor p = ops::global_avg_pool2d(h);
    return ops::reshape(p, {p.shape()[0], p.shape()[1], 1, 1});
  }
  Generator gen_;
  Tensor *stem_w_, *dw_w_, *dw_b_, *se1_a_w_, *se1_a_b_, *se1_b_w_, *se1_b_b_, *proj_w_,
      *proj_b_, *se2_a_w_, *se2_a_b_, *se2_b_w_, *se2_b_b_;
  nn::BatchNorm2d* stem_bn_;
  nn::Linear *fc1_, *fc2_;
};

}  // namespace ipg::testing
