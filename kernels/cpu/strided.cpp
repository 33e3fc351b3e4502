// Strided views on CPU (OpenMP over rows of the output's last axis): each element is
// written once, and the scatter's places are distinct, so results do not depend on the
// thread count. A row's source is found once (strided_source's divisions), then its
// elements follow at the last axis's stride: a plain copy when that is 1 (attention's
// head moves keep the head's features together), a strided walk otherwise (K^T).
#include "kernels/cpu/strided.h"

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;

// f(source row start, output row start, row length, source stride) for every row.
template <typename F>
void for_each_row(const StridedView& v, F f) {
  const int64_t n = v.numel();
  if (n == 0) return;
  const int64_t len = v.rank ? v.dims[v.rank - 1] : 1;
  const int64_t step = v.rank ? v.strides[v.rank - 1] : 0;
  const int64_t rows = n / len;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) f(strided_source(v, r * len), r * len, len, step);
}
}  // namespace

void strided_gather(const float* x, float* y, const StridedView& v) {
  for_each_row(v, [x, y](int64_t src, int64_t dst, int64_t len, int64_t step) {
    const float* s = x + src;
    float* d = y + dst;
    if (step == 1) {
      for (int64_t j = 0; j < len; ++j) d[j] = s[j];
    } else {
      for (int64_t j = 0; j < len; ++j) d[j] = s[j * step];
    }
  });
}

void strided_scatter_add(const float* dy, float* dx, const StridedView& v) {
  for_each_row(v, [dy, dx](int64_t src, int64_t dst, int64_t len, int64_t step) {
    float* s = dx + src;
    const float* d = dy + dst;
    if (step == 1) {
      for (int64_t j = 0; j < len; ++j) s[j] += d[j];
    } else {
      for (int64_t j = 0; j < len; ++j) s[j * step] += d[j];
    }
  });
}

}  // namespace ipg::kernels::cpu
