// Strided views on CPU (OpenMP over output elements): each element is written once, and
// the scatter's places are distinct, so results do not depend on the thread count.
#include "kernels/cpu/strided.h"

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void strided_gather(const float* x, float* y, const StridedView& v) {
  const int64_t n = v.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[strided_source(v, i)];
}

void strided_scatter_add(const float* dy, float* dx, const StridedView& v) {
  const int64_t n = v.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[strided_source(v, i)] += dy[i];
}

}  // namespace ipg::kernels::cpu
