// Concatenation on CPU: one memcpy-like run per outer slice (OpenMP over slices); every
// element is written once, so the result does not depend on the thread count.
#include "kernels/cpu/concat.h"

#include <algorithm>

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void concat_forward(const float* x, float* y, const ConcatPart& p) {
#pragma omp parallel for schedule(static) if (p.numel() >= kParallelMin)
  for (int64_t o = 0; o < p.outer; ++o)
    std::copy_n(x + o * p.x_row, p.x_row, y + o * p.y_row + p.offset);
}

void concat_backward(const float* dy, float* dx, const ConcatPart& p) {
#pragma omp parallel for schedule(static) if (p.numel() >= kParallelMin)
  for (int64_t o = 0; o < p.outer; ++o) {
    const float* src = dy + o * p.y_row + p.offset;
    float* dst = dx + o * p.x_row;
#pragma omp simd
    for (int64_t i = 0; i < p.x_row; ++i) dst[i] += src[i];
  }
}

}  // namespace ipg::kernels::cpu
