// Random crop + flip on CPU (OpenMP over samples and channels).
#include "kernels/cpu/augment.h"

#include "kernels/common/augment_math.h"

namespace ipg::kernels::cpu {

void random_crop_flip(const float* x, float* y, int64_t n, int64_t c, int h, int w, int pad,
                      bool flip, uint64_t seed, uint64_t first) {
  const int64_t plane = int64_t(h) * w;
#pragma omp parallel for schedule(static) if (n * c * plane >= (1 << 16))
  for (int64_t ic = 0; ic < n * c; ++ic) {
    const CropFlip d = crop_flip_draw(seed, first + static_cast<uint64_t>(ic / c), pad, flip);
    const float* src = x + ic * plane;
    float* dst = y + ic * plane;
    for (int r = 0; r < h; ++r)
      for (int col = 0; col < w; ++col) dst[r * w + col] = crop_flip_pixel(src, h, w, pad, d, r, col);
  }
}

}  // namespace ipg::kernels::cpu
