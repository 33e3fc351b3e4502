// Row-indexed ops on CPU. Each row touches only its own elements, so rows run in
// parallel without any ordering concern.
#include "kernels/cpu/rowwise.h"

#include <cmath>
#include <cstring>

#include "kernels/common/rowwise_math.h"

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void first_invalid_index(const int32_t* index, int64_t n, int64_t bound, int32_t* out) {
  out[0] = -1;
  for (int64_t r = 0; r < n; ++r) {
    if (!index_in_range(index[r], bound)) {
      out[0] = static_cast<int32_t>(r);
      return;
    }
  }
}

void gather_rows_forward(const float* x, const int32_t* index, float* out, int64_t rows,
                         int64_t cols) {
#pragma omp parallel for schedule(static) if (rows >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r)
    out[r] = index_in_range(index[r], cols) ? x[r * cols + index[r]] : NAN;
}

void gather_rows_backward(const int32_t* index, const float* dy, float* dx, int64_t rows,
                          int64_t cols) {
#pragma omp parallel for schedule(static) if (rows >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r)
    if (index_in_range(index[r], cols)) dx[r * cols + index[r]] += dy[r];
}

void scatter_rows_forward(const float* x, const int32_t* index, const float* values, float* out,
                          int64_t rows, int64_t cols) {
  if (out != x) std::memcpy(out, x, static_cast<size_t>(rows * cols) * sizeof(float));
  for (int64_t r = 0; r < rows; ++r)
    if (index_in_range(index[r], cols)) out[r * cols + index[r]] = values[r];
}

void scatter_rows_backward(const int32_t* index, const float* dy, float* dx, float* dvalues,
                           int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t k = index[r];
    if (dx)
      for (int64_t c = 0; c < cols; ++c)
        if (c != k) dx[r * cols + c] += dy[r * cols + c];
    if (dvalues && index_in_range(k, cols)) dvalues[r] += dy[r * cols + k];
  }
}

void max_excluding_forward(const float* x, const int32_t* exclude, float* out, int32_t* arg,
                           int64_t rows, int64_t cols, int64_t m) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t a = max_excluding_row(x + r * cols, cols, exclude + r * m, m);
    arg[r] = a;
    out[r] = a >= 0 ? x[r * cols + a] : -INFINITY;
  }
}

void max_excluding_backward(const int32_t* arg, const float* dy, float* dx, int64_t rows,
                            int64_t cols) {
#pragma omp parallel for schedule(static) if (rows >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r)
    if (arg[r] >= 0) dx[r * cols + arg[r]] += dy[r];
}

}  // namespace ipg::kernels::cpu
