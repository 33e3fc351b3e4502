// random_crop_flip: identity without padding or flip, exact mirrors, shifted copies with
// zero fill, reproducible draws, CUDA parity.
#include <gtest/gtest.h>

#include "engine/error.h"
#include "engine/ops/augment.h"
#include "engine/random.h"
#include "kernels/common/augment_math.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

Tensor images(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  Generator g(seed);
  return Tensor::uniform({n, c, h, w}, 0.1f, 1.f, g);  // no zeros: padding is visible
}

TEST(Augment, NoPaddingNoFlipIsTheIdentity) {
  const Tensor x = images(4, 3, 5, 7, 1);
  EXPECT_EQ(ops::random_crop_flip(x, 0, false, 9, 0).to_vector(), x.to_vector());
}

TEST(Augment, FlipAloneGivesTheImageOrItsMirror) {
  const int64_t n = 64, c = 2, h = 3, w = 5;
  const Tensor x = images(n, c, h, w, 2);
  const Tensor y = ops::random_crop_flip(x, 0, true, 5, 100);
  const float *xp = x.data(), *yp = y.data();
  int flipped = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool same = true, mirror = true;
    for (int64_t k = 0; k < c * h; ++k)
      for (int64_t col = 0; col < w; ++col) {
        const float out = yp[(i * c * h + k) * w + col];
        same &= out == xp[(i * c * h + k) * w + col];
        mirror &= out == xp[(i * c * h + k) * w + (w - 1 - col)];
      }
    EXPECT_TRUE(same || mirror) << "image " << i;
    flipped += mirror && !same;
  }
  EXPECT_GT(flipped, n / 4);  // about half
  EXPECT_LT(flipped, 3 * n / 4);
}

TEST(Augment, CropIsAShiftWithZeroFill) {
  const int64_t n = 16, c = 1, h = 6, w = 6;
  const int pad = 2;
  const Tensor x = images(n, c, h, w, 3);
  const Tensor y = ops::random_crop_flip(x, pad, false, 7, 40);
  int shifted = 0;
  for (int64_t i = 0; i < n; ++i) {
    const kernels::CropFlip d = kernels::crop_flip_draw(7, 40 + i, pad, false);
    ASSERT_GE(d.dy, 0);
    ASSERT_LE(d.dy, 2 * pad);
    shifted += d.dy != pad || d.dx != pad;
    for (int r = 0; r < h; ++r)
      for (int col = 0; col < w; ++col) {
        const int sr = r + d.dy - pad, sc = col + d.dx - pad;
        const float want = (sr < 0 || sr >= h || sc < 0 || sc >= w)
                               ? 0.f
                               : x.data()[(i * h + sr) * w + sc];
        ASSERT_EQ(y.data()[(i * h + r) * w + col], want) << i << " " << r << " " << col;
      }
  }
  EXPECT_GT(shifted, 0);
}

TEST(Augment, SameCountersSameBatchOtherCountersAnother) {
  const Tensor x = images(8, 3, 8, 8, 4);
  EXPECT_EQ(ops::random_crop_flip(x, 2, true, 11, 80).to_vector(),
            ops::random_crop_flip(x, 2, true, 11, 80).to_vector());
  EXPECT_NE(ops::random_crop_flip(x, 2, true, 11, 80).to_vector(),
            ops::random_crop_flip(x, 2, true, 11, 88).to_vector());
}

TEST(Augment, BadArgumentsAreErrors) {
  EXPECT_THROW(ops::random_crop_flip(Tensor::zeros({2, 8, 8}), 1, true, 0, 0), ShapeError);
  EXPECT_THROW(ops::random_crop_flip(Tensor::zeros({2, 1, 4, 4}), 4, true, 0, 0),
               std::invalid_argument);
  EXPECT_THROW(ops::random_crop_flip(Tensor::zeros({2, 1, 4, 4}), -1, true, 0, 0),
               std::invalid_argument);
}

TEST(AugmentCuda, SameBatchAsTheCpu) {
  IPG_REQUIRE_CUDA();
  const Tensor x = images(33, 3, 32, 32, 5);
  EXPECT_PARITY(ops::random_crop_flip(x, 4, true, 13, 1000),
                ops::random_crop_flip(x.to(Device::cuda(0)), 4, true, 13, 1000), 0, 0);
}

}  // namespace
}  // namespace ipg
