// ops::row_hash: the per-row hash of float bits that IGSM's cycle watch compares points by.
// Equal rows hash equal; any one flipped bit, a swap of two elements or another length
// changes the hash; the sum of terms gives the same bits in any order (what the CUDA
// twin's warp sum relies on); CUDA gives the CPU's bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "engine/error.h"
#include "engine/ops/index.h"
#include "kernels/common/row_hash_math.h"
#include "tests/support/float_bits.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using testing::bits_of;
using testing::float_of;

uint64_t hash_of_row(const Tensor& hashes, int64_t r) {
  const std::vector<int32_t> h = hashes.to_vector_i32();
  return static_cast<uint64_t>(static_cast<uint32_t>(h[2 * r])) |
         static_cast<uint64_t>(static_cast<uint32_t>(h[2 * r + 1])) << 32;
}

TEST(RowHash, EqualRowsHashEqualAndEveryFlippedBitChangesTheHash) {
  const int64_t cols = 97;
  std::vector<float> v = testing::random_tensor({1, cols}, 3).to_vector();
  std::vector<float> rows = v;
  rows.insert(rows.end(), v.begin(), v.end());
  const Tensor two = ops::row_hash(Tensor::from_vector(rows, {2, cols}));
  ASSERT_EQ(two.shape(), (Shape{2, 2}));
  EXPECT_EQ(hash_of_row(two, 0), hash_of_row(two, 1));

  // Every one-bit change of the row, as one batch: all hashes differ from the row's and
  // from each other.
  std::vector<float> flipped;
  for (int64_t i = 0; i < cols; ++i)
    for (int b = 0; b < 32; ++b) {
      std::vector<float> w = v;
      w[static_cast<size_t>(i)] = float_of(bits_of(w[static_cast<size_t>(i)]) ^ (1u << b));
      flipped.insert(flipped.end(), w.begin(), w.end());
    }
  const int64_t n = cols * 32;
  const Tensor h = ops::row_hash(Tensor::from_vector(flipped, {n, cols}));
  std::set<uint64_t> seen{hash_of_row(two, 0)};
  for (int64_t r = 0; r < n; ++r) seen.insert(hash_of_row(h, r));
  EXPECT_EQ(seen.size(), static_cast<size_t>(n + 1));
}

TEST(RowHash, PositionLengthAndSignOfZeroCount) {
  const std::vector<float> a{0.25f, 0.5f, 0.75f}, swapped{0.5f, 0.25f, 0.75f};
  const uint64_t ha = hash_of_row(ops::row_hash(Tensor::from_vector(a, {1, 3})), 0);
  EXPECT_NE(ha, hash_of_row(ops::row_hash(Tensor::from_vector(swapped, {1, 3})), 0));
  // The same first two elements in a shorter row.
  EXPECT_NE(ha, hash_of_row(ops::row_hash(Tensor::from_vector({0.25f, 0.5f}, {1, 2})), 0));
  // Bits, not values: 0 and -0 differ; a NaN equals its own bits.
  const Tensor z = ops::row_hash(Tensor::from_vector({0.f, -0.f}, {2, 1}));
  EXPECT_NE(hash_of_row(z, 0), hash_of_row(z, 1));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor q = ops::row_hash(Tensor::from_vector({nan, 1.f, nan, 1.f}, {2, 2}));
  EXPECT_EQ(hash_of_row(q, 0), hash_of_row(q, 1));
}

// The op's result is finish(sum of terms) however the sum is ordered: here backwards and
// in lanes of 32 added lane by lane, as the CUDA kernel's warp does.
TEST(RowHash, IsTheSumOfItsTermsInAnyOrder) {
  const int64_t rows = 5, cols = 1000;
  const Tensor x = testing::random_tensor({rows, 2, 20, 25}, 9);
  const Tensor h = ops::row_hash(x);
  ASSERT_EQ(h.shape(), (Shape{rows, 2}));
  const std::vector<float> v = x.to_vector();
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = v.data() + r * cols;
    uint64_t backwards = 0, lanes[32] = {};
    for (int64_t i = cols - 1; i >= 0; --i) backwards += kernels::row_hash_term(i, bits_of(p[i]));
    for (int64_t i = 0; i < cols; ++i) lanes[i % 32] += kernels::row_hash_term(i, bits_of(p[i]));
    for (int o = 16; o > 0; o >>= 1)
      for (int l = 0; l < o; ++l) lanes[l] += lanes[l + o];
    EXPECT_EQ(hash_of_row(h, r), kernels::row_hash_finish(backwards, cols)) << "row " << r;
    EXPECT_EQ(hash_of_row(h, r), kernels::row_hash_finish(lanes[0], cols)) << "row " << r;
  }
}

TEST(RowHash, ShapesAndTypes) {
  EXPECT_EQ(ops::row_hash(Tensor::zeros({0, 5})).shape(), (Shape{0, 2}));
  EXPECT_EQ(ops::row_hash(Tensor::zeros({4})).shape(), (Shape{4, 2}));
  EXPECT_THROW(ops::row_hash(Tensor::from_vector_i32({1, 2}, {2})), std::invalid_argument);
}

TEST(RowHashCuda, SameBitsAsTheCpu) {
  IPG_REQUIRE_CUDA();
  // Rows shorter than a warp, of one element, not a multiple of 32, and a batch of
  // LeNet-5 inputs; many rows, so that the grid strides.
  for (const Shape& s : {Shape{3, 1}, Shape{7, 5}, Shape{1000, 33}, Shape{70000, 1, 28, 28}}) {
    const Tensor x = testing::random_tensor(s, 5 + s[0]);
    const Tensor cpu = ops::row_hash(x), gpu = ops::row_hash(x.to(Device::cuda(0)));
    EXPECT_EQ(cpu.to_vector_i32(), gpu.to_vector_i32()) << shape_str(s);
  }
}

}  // namespace
}  // namespace ipg
