// Training: the loss falls on a learnable toy set, same seed -> same bits, and the
// options the post-processing attacks use (last layer only, re-initialized last layer,
// pruning masks) keep what they promise.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/random.h"
#include "models/prune.h"
#include "models/train.h"

namespace ipg {
namespace {

// Three classes of 28x28 images: a bright horizontal band in the top, middle or bottom
// third, over uniform noise.
Dataset toy_set(int64_t n, uint64_t seed) {
  Generator g(seed);
  Dataset d;
  d.name = "toy";
  d.num_classes = 3;
  d.images = Tensor::uniform({n, 1, 28, 28}, 0.f, 0.4f, g);
  d.labels = Tensor::empty({n}, Device::cpu(), DType::I32);
  for (int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % 3);
    d.labels.data_i32()[i] = k;
    for (int r = 9 * k + 1; r < 9 * k + 8; ++r)
      for (int c = 4; c < 24; ++c) d.images.data()[(i * 28 + r) * 28 + c] = 1.f;
  }
  return d;
}

std::unique_ptr<Network> lenet(uint64_t seed, const std::string& arch = "lenet5") {
  ModelConfig cfg;
  cfg.arch = arch;
  cfg.classes = 3;
  cfg.seed = seed;
  cfg.mean = {0.3f};  // about the toy set's statistics, as `ipguard train` would measure
  cfg.std = {0.3f};
  return make_network(cfg);
}

std::map<std::string, std::vector<float>> snapshot(Network& net) {
  std::map<std::string, std::vector<float>> m;
  for (auto& [name, p] : net.named_parameters()) m[name] = p->to_vector();
  return m;
}

TrainOptions quick(int epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch = 32;
  o.lr = 0.05f;
  o.seed = 3;
  return o;
}

TEST(Train, LossFallsAndTheToySetIsLearned) {
  const Dataset d = toy_set(192, 1);
  auto net = lenet(1);
  const auto reports = train(*net, d, &d, quick(4));
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_LT(reports.back().train_loss, 0.5 * reports.front().train_loss);
  EXPECT_GT(reports.back().test_accuracy, 0.95);
  EXPECT_FALSE(net->is_training());  // left in evaluation mode
}

// A learning rate that blows the loss up stops training with a message that names what
// the loss became in words (not "-nan" from std::to_string) and where.
// A dataset with labels the model cannot give is refused (an accuracy over it would be a
// wrong answer, not an error); one with fewer classes is measured.
TEST(Train, EvaluateRefusesADatasetWithMoreClassesThanTheModel) {
  auto net = lenet(4);
  Dataset d = toy_set(12, 2);
  EXPECT_GE(evaluate(*net, d, Device::cpu()), 0.0);
  d.num_classes = 4;
  try {
    evaluate(*net, d, Device::cpu());
    FAIL() << "a 4-class dataset was evaluated on a 3-class model";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("dataset toy has 4 classes, the model 3"), std::string::npos)
        << e.what();
  }
  d.num_classes = 2;
  EXPECT_GE(evaluate(*net, d, Device::cpu()), 0.0);
}

TEST(Train, ADivergingLossIsNamedInTheError) {
  const Dataset d = toy_set(96, 1);
  auto net = lenet(1);
  TrainOptions o = quick(3);
  o.lr = 1e30f;
  try {
    train(*net, d, &d, o);
    FAIL() << "training at lr 1e30 did not stop";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("loss became"), std::string::npos) << m;
    EXPECT_TRUE(m.find("NaN") != std::string::npos || m.find("infinite") != std::string::npos)
        << m;
    EXPECT_EQ(m.find("nan"), std::string::npos) << m;
    EXPECT_NE(m.find(", step "), std::string::npos) << m;
  }
}

TEST(Train, SameSeedSameBitsWithAugmentationAndMasks) {
  const Dataset d = toy_set(96, 2);
  std::map<std::string, std::vector<float>> result[2];
  for (auto& r : result) {
    auto net = lenet(5);
    TrainOptions o = quick(2);
    o.augment = true;
    o.crop_pad = 2;
    o.masks = prune_weights(*net, 0.3);
    train(*net, d, nullptr, o);
    r = snapshot(*net);
  }
  EXPECT_EQ(result[0], result[1]);
  // A different seed shuffles and augments differently.
  auto net = lenet(5);
  TrainOptions o = quick(2);
  o.seed = 4;
  train(*net, d, nullptr, o);
  EXPECT_NE(snapshot(*net), result[0]);
}

TEST(Train, LastLayerOnlyLeavesEverythingElseUntouched) {
  const Dataset d = toy_set(96, 3);
  auto net = lenet(6);
  const auto before = snapshot(*net);
  TrainOptions o = quick(1);
  o.last_layer_only = true;
  train(*net, d, nullptr, o);
  std::map<std::string, bool> last;
  for (auto& [name, p] : net->last_layer_parameters()) last[name] = true;
  ASSERT_FALSE(last.empty());
  for (const auto& [name, values] : snapshot(*net)) {
    if (last.count(name))
      EXPECT_NE(values, before.at(name)) << name;
    else
      EXPECT_EQ(values, before.at(name)) << name;
  }
}

TEST(Train, ReinitLastLayerRedrawsOnlyThatLayerWithinTheBound) {
  auto net = lenet(7);
  const auto before = snapshot(*net);
  reinit_last_layer(*net, 99);
  auto last = net->last_layer_parameters();
  const int64_t fan_in = last[0].second->dim(1);
  const float bound = 1.f / std::sqrt(float(fan_in));
  std::map<std::string, bool> is_last;
  for (auto& [name, p] : last) {
    is_last[name] = true;
    for (float v : p->to_vector()) ASSERT_LE(std::fabs(v), bound);
  }
  const auto after = snapshot(*net);
  for (const auto& [name, values] : after)
    if (is_last.count(name))
      EXPECT_NE(values, before.at(name)) << name;
    else
      EXPECT_EQ(values, before.at(name)) << name;
  auto again = lenet(7);
  reinit_last_layer(*again, 99);
  EXPECT_EQ(snapshot(*again), after);  // seeded
}

TEST(Prune, WeightPruningZerosExactlyTheSmallestFraction) {
  auto net = lenet(8);
  auto masks = prune_weights(*net, 0.4);
  int64_t total = 0, zeros = 0;
  float largest_pruned = 0, smallest_kept = 1e30f;
  std::map<std::string, Tensor*> params;
  for (auto& [name, p] : net->named_parameters()) params[name] = p;
  for (const ParamMask& m : masks) {
    ASSERT_GE(params.at(m.name)->ndim(), 2) << "biases and norms are not weight-pruned";
    const auto w = params.at(m.name)->to_vector(), mk = m.mask.to_vector();
    for (size_t i = 0; i < w.size(); ++i) {
      ++total;
      if (mk[i] == 0.f) {
        ++zeros;
        largest_pruned = std::max(largest_pruned, std::fabs(w[i]));
      } else {
        smallest_kept = std::min(smallest_kept, std::fabs(w[i]));
      }
    }
  }
  EXPECT_EQ(zeros, static_cast<int64_t>(std::floor(0.4 * double(total))));
  EXPECT_LE(largest_pruned, smallest_kept);
  EXPECT_NEAR(masked_fraction(masks), 0.4, 1e-4);
}

TEST(Prune, MaskedWeightsStayZeroThroughTraining) {
  const Dataset d = toy_set(96, 4);
  for (const bool filters : {false, true}) {
    SCOPED_TRACE(filters ? "filters" : "weights");
    auto net = lenet(9);
    TrainOptions o = quick(2);
    o.masks = filters ? prune_filters(*net, 0.5) : prune_weights(*net, 0.5);
    ASSERT_FALSE(o.masks.empty());
    train(*net, d, nullptr, o);
    std::map<std::string, Tensor*> params;
    for (auto& [name, p] : net->named_parameters()) params[name] = p;
    int64_t zeros = 0;
    for (const ParamMask& m : o.masks) {
      const auto w = params.at(m.name)->to_vector(), mk = m.mask.to_vector();
      for (size_t i = 0; i < w.size(); ++i)
        if (mk[i] == 0.f) {
          ASSERT_EQ(w[i], 0.f) << m.name << "[" << i << "]";
          ++zeros;
        }
    }
    EXPECT_GT(zeros, 0);
  }
}

TEST(Prune, FilterPruningRemovesWholeChannelsAndSparesResidualConvs) {
  ModelConfig cfg;
  cfg.arch = "resnet20";
  cfg.classes = 10;
  cfg.seed = 1;
  auto net = make_network(cfg);
  const auto masks = prune_filters(*net, 0.25);
  std::map<std::string, const Tensor*> by_name;
  for (const ParamMask& m : masks) by_name[m.name] = &m.mask;
  EXPECT_EQ(by_name.count("conv1/weight"), 0u);              // stem
  EXPECT_EQ(by_name.count("layer1/0/conv2/weight"), 0u);     // last conv of a block
  EXPECT_EQ(by_name.count("layer2/0/shortcut/0/weight"), 0u);  // projection
  ASSERT_EQ(by_name.count("layer1/0/conv1/weight"), 1u);
  ASSERT_EQ(by_name.count("layer1/0/bn1/weight"), 1u);  // its batch norm goes with it
  ASSERT_EQ(by_name.count("layer1/0/bn1/bias"), 1u);
  const auto w = by_name["layer1/0/conv1/weight"]->to_vector();
  const auto bn = by_name["layer1/0/bn1/weight"]->to_vector();
  const size_t filters = bn.size(), per = w.size() / filters;
  int pruned = 0;
  for (size_t f = 0; f < filters; ++f) {
    for (size_t j = 0; j < per; ++j) ASSERT_EQ(w[f * per + j], bn[f]) << "whole filters";
    pruned += bn[f] == 0.f;
  }
  EXPECT_EQ(pruned, static_cast<int>(filters / 4));
}

}  // namespace
}  // namespace ipg
