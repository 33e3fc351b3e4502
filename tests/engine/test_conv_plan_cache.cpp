// The CPU convolution's plan cache is bounded: past its capacity the least recently used
// plan is given back, and a plan made again gives the same bits as the first.
#include <gtest/gtest.h>

#include <vector>

#include "engine/autograd.h"
#include "engine/ops/conv.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "kernels/cpu/conv2d.h"

namespace ipg {
namespace {

// Forward and both gradients of one blocked convolution (oneDNN plans for all three
// passes) on a batch of `n` rows.
std::vector<float> run(int64_t n) {
  Generator gen(11);
  Tensor x = Tensor::uniform({n, 20, 8, 8}, 0.f, 1.f, gen);
  Tensor w = Tensor::normal({24, 20, 3, 3}, 0.f, 0.1f, gen);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  const Tensor y = ops::conv2d(x, w, Tensor(), 1, 1);
  ops::sum(y).backward();
  std::vector<float> out = y.to_vector();
  for (const Tensor& g : {x.grad(), w.grad()}) {
    const std::vector<float> v = g.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

TEST(ConvPlanCache, BoundedAndAPlanMadeAgainGivesTheSameBits) {
  namespace k = kernels::cpu;
  k::set_conv2d_plan_capacity(4);
  std::vector<std::vector<float>> first;
  for (int64_t n = 1; n <= 6; ++n) {  // 6 batch sizes, 3 passes each: 18 plans
    first.push_back(run(n));
    EXPECT_LE(k::conv2d_cached_plans(), 4u);
  }
  for (int64_t n = 1; n <= 6; ++n)  // each plan was given back and is made again
    EXPECT_EQ(run(n), first[size_t(n - 1)]) << "batch " << n;
  EXPECT_LE(k::conv2d_cached_plans(), 4u);
  k::set_conv2d_plan_capacity(1024);
}

}  // namespace
}  // namespace ipg
