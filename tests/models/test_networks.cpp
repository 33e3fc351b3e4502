// Architectures: parameter counts against the reference implementations, output shapes,
// input gradients with frozen weights, and input validation.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/error.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "models/network.h"

namespace ipg {
namespace {

ModelConfig config(const std::string& arch, int c, int h, int classes) {
  ModelConfig cfg;
  cfg.arch = arch;
  cfg.in_channels = c;
  cfg.height = cfg.width = h;
  cfg.classes = classes;
  cfg.seed = 1;
  return cfg;
}

TEST(Networks, ParameterCountsMatchTheReferences) {
  // LeNet-5 on 28x28x1: 156 + 2416 + 48120 + 10164 + 850.
  EXPECT_EQ(make_network(config("lenet5", 1, 28, 10))->num_parameters(), 61706);
  // CIFAR ResNet20: 269,722 parameters with identity (option A) shortcuts; the 1x1
  // projections (conv + BN) add 16*32+64 + 32*64+128 = 2,752.
  EXPECT_EQ(make_network(config("resnet20", 3, 32, 10))->num_parameters(), 269722 + 2752);
  // Keras applications ResNet50: 25,636,712 parameters (BN running stats are buffers).
  const int64_t keras_resnet50_trainable_and_bn = 25636712 - 2 * 26560;  // moving stats
  EXPECT_EQ(make_network(config("resnet50", 3, 64, 1000))->num_parameters(),
            keras_resnet50_trainable_and_bn);
}

TEST(Networks, EveryArchitectureGivesLogitsAndInputGradients) {
  for (const std::string arch : {"lenet5", "resnet20", "wrn-22-4", "vgg16"}) {
    SCOPED_TRACE(arch);
    auto net = make_network(config(arch, 1, 28, 10));
    net->eval();
    net->set_requires_grad(false);
    Generator gen(3);
    Tensor x = Tensor::uniform({2, 1, 28, 28}, 0.f, 1.f, gen);
    x.set_requires_grad(true);
    Tensor z = net->logits(x);
    ASSERT_EQ(z.shape(), (Shape{2, 10}));
    ops::sum(z).backward();
    ASSERT_TRUE(x.grad().defined());
    double norm = 0;
    for (float g : x.grad().to_vector()) {
      ASSERT_TRUE(std::isfinite(g));
      norm += double(g) * g;
    }
    EXPECT_GT(norm, 0.0);
    for (auto& [name, p] : net->named_parameters()) EXPECT_FALSE(p->grad().defined()) << name;
    EXPECT_EQ(net->labels(x.detach()).shape(), (Shape{2}));
  }
}

TEST(Networks, InputShapeIsChecked) {
  auto net = make_network(config("lenet5", 1, 28, 10));
  EXPECT_THROW(net->logits(Tensor::zeros({2, 3, 28, 28})), ShapeError);
  EXPECT_THROW(net->logits(Tensor::zeros({2, 28, 28})), ShapeError);
}

TEST(Networks, UnknownOrAbsurdConfigIsRejected) {
  EXPECT_THROW(make_network(config("resnet1000", 1, 28, 10)), std::invalid_argument);
  EXPECT_THROW(make_network(config("lenet5", 1, 100000, 10)), std::invalid_argument);
  EXPECT_THROW(make_network(config("lenet5", 1, 8, 10)), std::invalid_argument);
}

TEST(Networks, SameSeedSameWeights) {
  auto a = make_network(config("resnet20", 1, 28, 10));
  auto b = make_network(config("resnet20", 1, 28, 10));
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_EQ(pa[i].second->to_vector(), pb[i].second->to_vector());
  }
}

TEST(Networks, ModulePathsFollowTheReferenceLayouts) {
  auto r50 = make_network(config("resnet50", 3, 64, 1000));
  auto names = r50->named_parameters();
  auto has = [&](const std::string& n) {
    for (auto& [k, v] : names)
      if (k == n) return true;
    return false;
  };
  EXPECT_TRUE(has("conv1/conv/weight"));
  EXPECT_TRUE(has("conv2/block1/0_conv/weight"));
  EXPECT_TRUE(has("conv5/block3/3_bn/weight"));
  EXPECT_TRUE(has("predictions/bias"));
}

}  // namespace
}  // namespace ipg
