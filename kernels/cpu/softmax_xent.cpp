// Softmax and cross-entropy on CPU: rows in parallel, each row summed in order in double,
// so the reference is exact to float rounding and independent of the thread count.
#include "kernels/cpu/softmax_xent.h"

#include <cmath>

#include "kernels/common/loss_math.h"
#include "kernels/common/rowwise_math.h"

namespace ipg::kernels::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 14;

struct RowStats {
  float max;
  float sum;
};

RowStats row_stats(const float* z, int64_t cols) {
  float m = z[0];
  for (int64_t c = 1; c < cols; ++c) m = nan_max(m, z[c]);
  double s = 0.0;
  for (int64_t c = 0; c < cols; ++c) s += expf(z[c] - m);
  return {m, static_cast<float>(s)};
}

}  // namespace

void softmax_forward(const float* x, float* y, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = x + r * cols;
    const RowStats st = row_stats(z, cols);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = softmax_value(z[c], st.max, st.sum);
  }
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = y + r * cols;
    const float* gr = dy + r * cols;
    double dot = 0.0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(gr[c]) * yr[c];
    const float d = static_cast<float>(dot);
    for (int64_t c = 0; c < cols; ++c) dx[r * cols + c] += yr[c] * (gr[c] - d);
  }
}

void softmax_xent_forward(const float* logits, const int32_t* labels, float* row_stats_out,
                          float* loss, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const RowStats st = row_stats(logits + r * cols, cols);
    row_stats_out[2 * r] = st.max;
    row_stats_out[2 * r + 1] = st.sum;
  }
  // The batch mean is a sequential sum in row order: the same bits on every run.
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t y = labels[r];
    total += index_in_range(y, cols) ? xent_row_loss(logits[r * cols + y], row_stats_out[2 * r],
                                                     row_stats_out[2 * r + 1])
                                     : NAN;
  }
  loss[0] = static_cast<float>(total / static_cast<double>(rows));
}

void softmax_xent_backward(const float* logits, const int32_t* labels, const float* row_stats,
                           const float* grad_loss, float* dlogits, int64_t rows, int64_t cols) {
  const float scale = grad_loss[0] / static_cast<float>(rows);
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float m = row_stats[2 * r], s = row_stats[2 * r + 1];
    for (int64_t c = 0; c < cols; ++c)
      dlogits[r * cols + c] += xent_grad(logits[r * cols + c], c == labels[r], m, s, scale);
  }
}

}  // namespace ipg::kernels::cpu
