// Row-indexed ops (gather_rows, scatter_rows, max_excluding) and clamp: values against
// plain loops, gradients against finite differences, index checks, CUDA parity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/error.h"
#include "engine/ops/clamp.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/random.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;

Tensor rand_index(int64_t n, int32_t k, uint64_t seed) {
  Generator g(seed);
  std::vector<int32_t> idx;
  for (float v : Tensor::uniform({n}, 0.f, static_cast<float>(k), g).to_vector())
    idx.push_back(std::min(static_cast<int32_t>(v), k - 1));
  return Tensor::from_vector_i32(idx, {n});
}

// Two distinct classes per row, with some -1 padding: IPGuard's {i, j}.
Tensor rand_exclude(int64_t n, int32_t k, uint64_t seed) {
  const auto a = rand_index(n, k, seed).to_vector_i32();
  std::vector<int32_t> ex;
  for (int64_t r = 0; r < n; ++r) {
    ex.push_back(a[r]);
    ex.push_back(r % 3 == 0 ? -1 : (a[r] + 1 + static_cast<int32_t>(r) % (k - 1)) % k);
  }
  return Tensor::from_vector_i32(ex, {n, 2});
}

TEST(RowOps, GatherMatchesLoop) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  EXPECT_EQ(ops::gather_rows(x, Tensor::from_vector_i32({1, 0, 1}, {3})).to_vector(),
            (std::vector<float>{2, 3, 6}));
}

TEST(RowOps, ScatterMatchesLoop) {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor out = ops::scatter_rows(x, Tensor::from_vector_i32({2, 0}, {2}),
                                 Tensor::from_vector({-1.f, -2.f}, {2}));
  EXPECT_EQ(out.to_vector(), (std::vector<float>{1, 2, -1, -2, 5, 6}));
  EXPECT_EQ(x.to_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6})) << "x must not change";
}

TEST(RowOps, MaxExcludingMatchesLoop) {
  Tensor x = Tensor::from_vector({5, 1, 4, 4,  //
                                  0, 9, 8, 7,  //
                                  3, 3, 3, 3,  //
                                  1, 2, 6, 0},
                                 {4, 4});
  Tensor ex = Tensor::from_vector_i32({0, -1, 1, 2, -1, -1, 0, 1}, {4, 2});
  const auto out = ops::max_excluding(x, ex).to_vector();
  EXPECT_EQ(out, (std::vector<float>{4, 7, 3, 6}));
  // Exclusion as a plain [n] vector: CW's max over t != y*.
  EXPECT_EQ(ops::max_excluding(x, Tensor::from_vector_i32({0, 1, 3, 2}, {4})).to_vector(),
            (std::vector<float>{4, 8, 3, 2}));
}

TEST(RowOps, MaxExcludingTiesGradientGoesToFirst) {
  Tensor x = Tensor::from_vector({2, 7, 7, 7}, {1, 4});
  x.set_requires_grad(true);
  ops::max_excluding(x, Tensor::from_vector_i32({1}, {1, 1})).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 0, 1, 0}));
}

TEST(RowOps, MaxExcludingAllExcludedAndNan) {
  Tensor x = Tensor::from_vector({1, 2, 1, NAN, 3}, {1, 5});
  EXPECT_TRUE(std::isnan(ops::max_excluding(x, Tensor::from_vector_i32({0}, {1, 1})).item()));
  Tensor y = Tensor::from_vector({1, 2}, {1, 2});
  EXPECT_EQ(ops::max_excluding(y, Tensor::from_vector_i32({1, 0}, {1, 2})).item(), -INFINITY);
}

TEST(RowOps, IndexOutOfRangeNamesTheRow) {
  Tensor x = Tensor::zeros({3, 4});
  try {
    ops::gather_rows(x, Tensor::from_vector_i32({0, 4, 1}, {3}));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::scatter_rows(x, Tensor::from_vector_i32({0, 1, -1}, {3}), Tensor::zeros({3})),
               std::invalid_argument);
}

TEST(RowOps, ShapeErrorsNameBothShapes) {
  try {
    ops::gather_rows(Tensor::zeros({3, 4}), Tensor::from_vector_i32({0, 1}, {2}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("[3, 4]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2]"), std::string::npos) << msg;
  }
  EXPECT_THROW(ops::scatter_rows(Tensor::zeros({3, 4}), Tensor::from_vector_i32({0, 1, 2}, {3}),
                                 Tensor::zeros({4})),
               ShapeError);
  EXPECT_THROW(ops::max_excluding(Tensor::zeros({3, 4}), Tensor::from_vector_i32({0, 1}, {2, 1})),
               ShapeError);
  EXPECT_THROW(ops::gather_rows(Tensor::zeros({12}), Tensor::from_vector_i32({0}, {1})),
               ShapeError);
  EXPECT_THROW(ops::gather_rows(Tensor::zeros({2, 2}), Tensor::zeros({2})), std::invalid_argument);
}

TEST(RowGrad, Gather) {
  auto x = testing::random_leaf({5, 4}, 1);
  Tensor idx = rand_index(5, 4, 2);
  EXPECT_GRADCHECK([idx](const Inputs& in) { return ops::gather_rows(in[0], idx); }, {x});
}

TEST(RowGrad, ScatterInXAndValues) {
  auto x = testing::random_leaf({5, 4}, 3), v = testing::random_leaf({5}, 4);
  Tensor idx = rand_index(5, 4, 5);
  EXPECT_GRADCHECK([idx](const Inputs& in) { return ops::scatter_rows(in[0], idx, in[1]); },
                   {x, v});
  // Only the values need a gradient (x constant), and only x (values constant).
  Tensor xc = x.detach().clone(), vc = v.detach().clone();
  EXPECT_GRADCHECK([idx](const Inputs& in) { return ops::scatter_rows(in[0], idx, in[1]); },
                   {xc, v});
  EXPECT_GRADCHECK([idx](const Inputs& in) { return ops::scatter_rows(in[0], idx, in[1]); },
                   {x, vc});
}

TEST(RowGrad, MaxExcludingAwayFromTies) {
  auto x = testing::random_leaf({6, 5}, 6);
  Tensor ex = rand_exclude(6, 5, 7);
  EXPECT_GRADCHECK([ex](const Inputs& in) { return ops::max_excluding(in[0], ex); }, {x});
}

TEST(RowGrad, IpguardLossComposes) {
  // ReLU(Z_i - Z_j + k) + ReLU(max_{t != i,j} Z_t - Z_i) from the row ops, per row.
  auto z = testing::random_leaf({6, 5}, 8, -2.f, 2.f);
  Tensor ex = rand_exclude(6, 5, 9);
  const auto e = ex.to_vector_i32();
  std::vector<int32_t> iv, jv;
  for (int r = 0; r < 6; ++r) {
    iv.push_back(e[2 * r]);
    jv.push_back(e[2 * r + 1] >= 0 ? e[2 * r + 1] : (e[2 * r] + 1) % 5);
  }
  std::vector<int32_t> ijv;
  for (int r = 0; r < 6; ++r) ijv.insert(ijv.end(), {iv[r], jv[r]});
  Tensor i = Tensor::from_vector_i32(iv, {6}), j = Tensor::from_vector_i32(jv, {6});
  Tensor ij = Tensor::from_vector_i32(ijv, {6, 2});
  EXPECT_GRADCHECK(
      [i, j, ij](const Inputs& in) {
        Tensor zi = ops::gather_rows(in[0], i), zj = ops::gather_rows(in[0], j);
        return ops::add(ops::relu(ops::add_scalar(ops::sub(zi, zj), 0.5f)),
                        ops::relu(ops::sub(ops::max_excluding(in[0], ij), zi)));
      },
      {z});
}

TEST(ClampOps, ValuesAndNan) {
  Tensor x = Tensor::from_vector({-1.f, 0.f, 0.25f, 1.f, 2.f, NAN}, {6});
  const auto y = ops::clamp(x, 0.f, 1.f).to_vector();
  EXPECT_EQ(std::vector<float>(y.begin(), y.end() - 1), (std::vector<float>{0, 0, 0.25f, 1, 1}));
  EXPECT_TRUE(std::isnan(y[5]));
  EXPECT_THROW(ops::clamp(x, 1.f, 0.f), std::invalid_argument);
}

TEST(ClampGrad, PassesStrictlyInsideOnly) {
  auto x = testing::random_leaf({4, 5}, 10, 0.05f, 0.95f);
  EXPECT_GRADCHECK([](const Inputs& in) { return ops::clamp(in[0], 0.f, 1.f); }, {x});
  Tensor b = Tensor::from_vector({-0.5f, 0.f, 0.5f, 1.f, 1.5f}, {5});
  b.set_requires_grad(true);
  ops::clamp(b, 0.f, 1.f).backward(Tensor::ones({5}));
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{0, 0, 1, 0, 0}));
}

// ---- CUDA parity: same op, same inputs, CPU twin as reference ----

using testing::expect_forward_backward_parity;

// The index tensors are constants: each GPU call moves them to the input's device.
TEST(RowCuda, GatherScatterParity) {
  IPG_REQUIRE_CUDA();
  auto x = testing::random_leaf({500, 10}, 20), v = testing::random_leaf({500}, 21);
  Tensor idx = rand_index(500, 10, 22);
  expect_forward_backward_parity(
      [idx](const Inputs& in) { return ops::gather_rows(in[0], idx.to(in[0].device())); }, {x}, 0,
      0);
  expect_forward_backward_parity(
      [idx](const Inputs& in) { return ops::scatter_rows(in[0], idx.to(in[0].device()), in[1]); },
      {x, v}, 0, 0);
}

TEST(RowCuda, MaxExcludingParity) {
  IPG_REQUIRE_CUDA();
  for (int32_t k : {10, 1000}) {
    auto x = testing::random_leaf({300, k}, 30 + k);
    Tensor ex = rand_exclude(300, k, 31 + k);
    expect_forward_backward_parity(
        [ex](const Inputs& in) { return ops::max_excluding(in[0], ex.to(in[0].device())); }, {x}, 0,
        0);
  }
}

TEST(RowCuda, IndexOutOfRangeThrowsOnCuda) {
  IPG_REQUIRE_CUDA();
  Tensor x = Tensor::zeros({3, 4}, Device::cuda(0));
  try {
    ops::gather_rows(x, Tensor::from_vector_i32({0, 1, 7}, {3}, Device::cuda(0)));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
  }
}

TEST(ClampCuda, Parity) {
  IPG_REQUIRE_CUDA();
  auto x = testing::random_leaf({7, 1001}, 40, -0.5f, 1.5f);
  expect_forward_backward_parity([](const Inputs& in) { return ops::clamp(in[0], 0.f, 1.f); }, {x},
                                 0, 0);
}

}  // namespace
}  // namespace ipg
