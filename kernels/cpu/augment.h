// CPU twin of kernels/cuda/augment.cu: random crop (zero padding) + horizontal flip.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// y[i] = crop/flip of x[i] for i in [0, n), images [c, h, w]; sample i draws with counter
// first + i under seed (kernels/common/augment_math.h). x and y must not overlap.
void random_crop_flip(const float* x, float* y, int64_t n, int64_t c, int h, int w, int pad,
                      bool flip, uint64_t seed, uint64_t first);

}  // namespace ipg::kernels::cpu
