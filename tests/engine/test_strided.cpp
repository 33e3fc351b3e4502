// permute and slice (engine/ops/strided.h): values against index loops (a ShuffleNet
// channel shuffle of rank 5, slices with steps, a flip), gradients against finite
// differences (places outside a slice get zero; two slices of one tensor add up), the
// refusals, and CUDA parity.
#include <gtest/gtest.h>

#include <vector>

#include "engine/error.h"
#include "engine/ops/concat.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/strided.h"
#include "engine/ops/view.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;

TEST(StridedValues, PermuteMatchesIndexLoops) {
  // [n, groups, c / groups, h, w] with the two middle axes swapped: the channel shuffle.
  const Tensor x = testing::random_tensor({2, 2, 3, 4, 5}, 1);
  const Tensor y = ops::permute(x, {0, 2, 1, 3, 4});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 2, 4, 5}));
  const auto v = x.to_vector(), got = y.to_vector();
  size_t k = 0;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int g = 0; g < 2; ++g)
        for (int h = 0; h < 4; ++h)
          for (int w = 0; w < 5; ++w) EXPECT_EQ(got[k++], v[(((n * 2 + g) * 3 + c) * 4 + h) * 5 + w]);
  // A full reversal, and the identity.
  const Tensor z = ops::permute(x, {4, 3, 2, 1, 0});
  EXPECT_EQ(z.shape(), (Shape{5, 4, 3, 2, 2}));
  EXPECT_EQ(z.to_vector()[size_t((((1 * 4 + 2) * 3 + 1) * 2 + 1) * 2 + 0)],  // z[1, 2, 1, 1, 0]
            v[size_t((((0 * 2 + 1) * 3 + 1) * 4 + 2) * 5 + 1)]);
  EXPECT_EQ(ops::permute(x, {0, 1, 2, 3, 4}).to_vector(), v);
}

TEST(StridedValues, SlicesMatchIndexLoops) {
  const Tensor x = testing::random_tensor({2, 6, 3, 4}, 2);
  const auto v = x.to_vector();
  auto at = [&](int n, int c, int h, int w) { return v[size_t(((n * 6 + c) * 3 + h) * 4 + w)]; };
  struct Case {
    int axis;
    int64_t start, end, step;
    std::vector<int> picked;
  };
  const Case cases[] = {{1, 3, 6, 1, {3, 4, 5}},      // the second half of the channels
                        {1, 0, 6, 2, {0, 2, 4}},      // every other channel
                        {-1, 3, -1, -1, {3, 2, 1, 0}},  // a flip of the columns
                        {1, 5, 0, -2, {5, 3, 1}},
                        {2, 1, 2, 7, {1}}};           // one element, a step past the end
  for (const Case& c : cases) {
    SCOPED_TRACE("axis " + std::to_string(c.axis) + " " + std::to_string(c.start) + ":" +
                 std::to_string(c.end) + ":" + std::to_string(c.step));
    const Tensor y = ops::slice(x, c.axis, c.start, c.end, c.step);
    const int a = c.axis < 0 ? c.axis + 4 : c.axis;
    Shape want = x.shape();
    want[size_t(a)] = int64_t(c.picked.size());
    ASSERT_EQ(y.shape(), want);
    const auto got = y.to_vector();
    size_t k = 0;
    for (int n = 0; n < 2; ++n)
      for (int ch = 0; ch < want[1]; ++ch)
        for (int h = 0; h < want[2]; ++h)
          for (int w = 0; w < want[3]; ++w) {
            int idx[4] = {n, ch, h, w};
            idx[a] = c.picked[size_t(idx[a])];
            EXPECT_EQ(got[k++], at(idx[0], idx[1], idx[2], idx[3]));
          }
  }
}

TEST(StridedValues, RefusalsNameTheShape) {
  const Tensor x = Tensor::zeros({2, 4, 3});
  for (const std::vector<int>& bad : {std::vector<int>{0, 1}, {0, 1, 1}, {0, 1, 3}}) {
    try {
      ops::permute(x, bad);
      FAIL() << "expected ShapeError";
    } catch (const ShapeError& e) {
      EXPECT_NE(std::string(e.what()).find("[2, 4, 3]"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ops::slice(x, 1, 0, 4, 0), ShapeError);   // step 0
  EXPECT_THROW(ops::slice(x, 1, 4, 4, 1), ShapeError);   // start past the axis
  EXPECT_THROW(ops::slice(x, 1, 2, 2, 1), ShapeError);   // no element
  EXPECT_THROW(ops::slice(x, 1, 1, 3, -1), ShapeError);  // no element going down
  EXPECT_THROW(ops::slice(x, 1, 0, 5, 1), ShapeError);   // end past the axis
  EXPECT_THROW(ops::slice(x, 3, 0, 1, 1), ShapeError);   // no such axis
  EXPECT_THROW(ops::permute(Tensor::zeros({1, 1, 1, 1, 1, 1, 1, 1, 1}), {0, 1, 2, 3, 4, 5, 6, 7, 8}),
               ShapeError);
}

TEST(StridedGrad, AgainstFiniteDifferences) {
  auto x = testing::random_tensor({2, 6, 3, 4}, 3, -1.f, 1.f, true);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::permute(in[0], {0, 2, 3, 1}); }, {x});
  // A slice leaves the other places' gradient zero; a flip reverses it.
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::slice(in[0], 1, 1, 6, 2); }, {x});
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::slice(in[0], 3, 3, -1, -1); }, {x});
  // ShuffleNet's unit: split the channels in two, shuffle them back together; the two
  // halves' gradients add into one buffer.
  EXPECT_GRADCHECK(
      [](const Inputs& in) {
        const Tensor a = ops::slice(in[0], 1, 0, 3), b = ops::slice(in[0], 1, 3, 6);
        const Tensor joined = ops::concat({ops::mul(a, a), b}, 1);
        const Tensor grouped = ops::reshape(joined, {2, 2, 3, 3, 4});
        return ops::reshape(ops::permute(grouped, {0, 2, 1, 3, 4}), {2, 6, 3, 4});
      },
      {x});
}

TEST(StridedGrad, ASliceTakesGradientOnlyAtItsPlaces) {
  auto x = testing::random_tensor({1, 5, 2}, 4, -1.f, 1.f, true);
  ops::sum(ops::slice(x, 1, 4, 0, -2)).backward();  // channels 4 and 2
  const auto g = x.grad().to_vector();
  for (int c = 0; c < 5; ++c)
    for (int w = 0; w < 2; ++w) EXPECT_EQ(g[size_t(c * 2 + w)], (c == 4 || c == 2) ? 1.f : 0.f) << c;
}

// ---- CUDA parity: the gather and scatter move values, so the bits are the CPU's ----

using testing::expect_forward_backward_parity;

TEST(StridedCuda, PermuteAndSliceParity) {
  IPG_REQUIRE_CUDA();
  auto x = testing::random_tensor({8, 4, 6, 7, 9}, 20, -2.f, 2.f, true);
  expect_forward_backward_parity([](const Inputs& in) { return ops::permute(in[0], {0, 2, 1, 3, 4}); },
                                 {x}, 0, 0);
  expect_forward_backward_parity([](const Inputs& in) { return ops::permute(in[0], {4, 0, 3, 1, 2}); },
                                 {x}, 0, 0);
  expect_forward_backward_parity([](const Inputs& in) { return ops::slice(in[0], 2, 5, -1, -2); },
                                 {x}, 0, 0);
  expect_forward_backward_parity([](const Inputs& in) { return ops::slice(in[0], 1, 2, 4); }, {x},
                                 0, 0);
}

}  // namespace
}  // namespace ipg
