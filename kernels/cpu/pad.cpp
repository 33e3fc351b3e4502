// CPU zero padding (OpenMP), row by row: border rows are zero-filled, interior rows are a
// zero margin around a copy of the input row.
#include "kernels/cpu/pad.h"

namespace ipg::kernels::cpu {

namespace {
// Below this, thread start-up costs more than the loop.
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void zero_pad2d_forward(const float* x, float* y, int64_t planes, const PadGeometry& g) {
  const int64_t rows = planes * g.oh;
#pragma omp parallel for schedule(static) if (rows * g.ow >= kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) {
    const int64_t p = pr / g.oh, ih = pr % g.oh - g.top;
    float* y_row = y + pr * g.ow;
    if (ih < 0 || ih >= g.h) {
      for (int64_t j = 0; j < g.ow; ++j) y_row[j] = 0.f;
      continue;
    }
    const float* x_row = x + (p * g.h + ih) * g.w;
    for (int64_t j = 0; j < g.left; ++j) y_row[j] = 0.f;
    for (int64_t j = 0; j < g.w; ++j) y_row[g.left + j] = x_row[j];
    for (int64_t j = g.left + g.w; j < g.ow; ++j) y_row[j] = 0.f;
  }
}

void zero_pad2d_backward(const float* dy, float* dx, int64_t planes, const PadGeometry& g) {
  const int64_t rows = planes * g.h;
#pragma omp parallel for schedule(static) if (rows * g.w >= kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) {
    const int64_t p = pr / g.h, ih = pr % g.h;
    const float* dy_row = dy + (p * g.oh + ih + g.top) * g.ow + g.left;
    float* dx_row = dx + pr * g.w;
    for (int64_t j = 0; j < g.w; ++j) dx_row[j] += dy_row[j];
  }
}

}  // namespace ipg::kernels::cpu
