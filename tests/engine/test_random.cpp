// Seeded generators: same seed, same numbers, whatever the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "engine/random.h"
#include "engine/tensor.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

TEST(Random, SameSeedSameNumbers) {
  Generator a(42), b(42), c(43);
  const auto va = Tensor::uniform({1000}, 0.f, 1.f, a).to_vector();
  EXPECT_EQ(va, Tensor::uniform({1000}, 0.f, 1.f, b).to_vector());
  EXPECT_NE(va, Tensor::uniform({1000}, 0.f, 1.f, c).to_vector());
}

TEST(Random, SuccessiveDrawsDiffer) {
  Generator g(1);
  const auto first = Tensor::uniform({100}, 0.f, 1.f, g).to_vector();
  EXPECT_NE(first, Tensor::uniform({100}, 0.f, 1.f, g).to_vector());
  EXPECT_EQ(g.position(), 200u);
}

TEST(Random, IndependentOfThreadCount) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Generator g1(9);
  const auto one = Tensor::normal({1 << 16}, 0.f, 1.f, g1).to_vector();
  omp_set_num_threads(2);
  Generator g2(9);
  const auto two = Tensor::normal({1 << 16}, 0.f, 1.f, g2).to_vector();
  omp_set_num_threads(saved);
  EXPECT_EQ(one, two);
}

TEST(Random, MomentsAreRight) {
  Generator g(5);
  const auto u = Tensor::uniform({1 << 16}, -1.f, 3.f, g).to_vector();
  const auto n = Tensor::normal({1 << 16}, 2.f, 0.5f, g).to_vector();
  double su = 0, sn = 0, sn2 = 0;
  for (float v : u) {
    EXPECT_GE(v, -1.f);
    EXPECT_LT(v, 3.f);
    su += v;
  }
  for (float v : n) {
    sn += v;
    sn2 += double(v) * v;
  }
  const double mu = su / u.size(), mn = sn / n.size();
  EXPECT_NEAR(mu, 1.0, 0.02);
  EXPECT_NEAR(mn, 2.0, 0.01);
  EXPECT_NEAR(std::sqrt(sn2 / n.size() - mn * mn), 0.5, 0.01);
}

TEST(RandomCuda, SameNumbersAsCpu) {
  IPG_REQUIRE_CUDA();
  Generator a(3), b(3);
  EXPECT_PARITY(Tensor::uniform({4097}, 0.f, 1.f, a),
                Tensor::uniform({4097}, 0.f, 1.f, b, Device::cuda(0)), 0.0, 0.0);
  // A width that is no power of two: the product is rounded before the add on both
  // devices (philox_uniform's mul_rn), where an FMA on the GPU would round once.
  EXPECT_PARITY(Tensor::uniform({4097}, 0.1f, 0.4f, a),
                Tensor::uniform({4097}, 0.1f, 0.4f, b, Device::cuda(0)), 0.0, 0.0);
  EXPECT_PARITY(Tensor::normal({4097}, 0.f, 1.f, a),
                Tensor::normal({4097}, 0.f, 1.f, b, Device::cuda(0)), 1e-5, 1e-5);
}

}  // namespace
}  // namespace ipg
