// Clamp on CPU (OpenMP); every element is independent.
#include "kernels/cpu/clamp.h"

#include "kernels/common/clamp_math.h"

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = clamp_value(x[i], lo, hi);
}

void clamp_backward(const float* x, const float* dy, float* dx, float lo, float hi, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    if (clamp_passes_grad(x[i], lo, hi)) dx[i] += dy[i];
}

}  // namespace ipg::kernels::cpu
