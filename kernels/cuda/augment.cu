// Random crop + flip on CUDA: one thread per output pixel; each thread recomputes its
// sample's draw (one Philox call, cheaper than a second kernel and a buffer).
#include "kernels/common/augment_math.h"
#include "kernels/cuda/augment.h"
#include "kernels/cuda/launch.cuh"

namespace ipg::kernels::cuda {

void random_crop_flip(const float* x, float* y, int64_t n, int64_t c, int h, int w, int pad,
                      bool flip, uint64_t seed, uint64_t first, cudaStream_t stream) {
  const int64_t plane = int64_t(h) * w, per_sample = c * plane;
  launch(n * per_sample, stream, [=] __device__(int64_t i) {
    const int64_t sample = i / per_sample, p = i % plane;
    const CropFlip d = crop_flip_draw(seed, first + static_cast<uint64_t>(sample), pad, flip);
    y[i] = crop_flip_pixel(x + (i - p), h, w, pad, d, static_cast<int>(p / w),
                           static_cast<int>(p % w));
  });
}

}  // namespace ipg::kernels::cuda
