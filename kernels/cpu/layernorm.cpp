// Layer normalization on the CPU: rows in parallel, each row's sums in double (lane_sum.h:
// the same bits for any thread count), two passes for the statistics (the mean, then the
// squared deviations from it) so they match a double reference to float rounding.
#include "kernels/cpu/layernorm.h"

#include "kernels/common/layernorm_math.h"
#include "kernels/cpu/lane_sum.h"

namespace ipg::kernels::cpu {

namespace {

// Below this many elements, thread start-up costs more than the loop.
constexpr int64_t kLayerNormParallelMin = 1 << 14;

}  // namespace

void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y,
                        float* mean, float* rstd, int64_t rows, int64_t cols, float eps) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols >= kLayerNormParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const double dm = lane_sum(cols, [xr](int64_t c) { return double(xr[c]); }) / double(cols);
    const double var = lane_sum(cols, [xr, dm](int64_t c) {
                         const double d = double(xr[c]) - dm;
                         return d * d;
                       }) / double(cols);
    const float m = static_cast<float>(dm);
    const float rs = layer_norm_rstd(static_cast<float>(var), eps);
    mean[r] = m;
    rstd[r] = rs;
    float* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) yr[c] = layer_norm_value(xr[c], m, rs, gamma, beta, c);
  }
}

void layer_norm_backward_input(const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* dy, float* dx, int64_t rows,
                               int64_t cols, bool accumulate) {
  if (cols <= 0) return;
#pragma omp parallel for schedule(static) if (rows * cols >= kLayerNormParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    const float m = mean[r], rs = rstd[r];
    const double sg = lane_sum(cols, [=](int64_t c) {
      return double(layer_norm_scaled_grad(gr[c], gamma, c));
    });
    const double sgx = lane_sum(cols, [=](int64_t c) {
      return double(layer_norm_scaled_grad(gr[c], gamma, c)) *
             double(layer_norm_xhat(xr[c], m, rs));
    });
    const float mg = static_cast<float>(sg / double(cols));
    const float mgx = static_cast<float>(sgx / double(cols));
    float* d = dx + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = layer_norm_input_grad(layer_norm_scaled_grad(gr[c], gamma, c),
                                            layer_norm_xhat(xr[c], m, rs), rs, mg, mgx);
      d[c] = accumulate ? d[c] + v : v;
    }
  }
}

void layer_norm_backward_params(const float* x, const float* mean, const float* rstd,
                                const float* dy, float* dgamma, float* dbeta, int64_t rows,
                                int64_t cols) {
  if (cols <= 0 || (!dgamma && !dbeta)) return;
  // Blocks of columns in parallel; within a block the rows in order, so each column's sum
  // has one order whatever the thread count, and each row's segment is read contiguously.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols >= kLayerNormParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kBlock, n = cols - c0 < kBlock ? cols - c0 : kBlock;
    double sg[kBlock] = {}, sgx[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols + c0;
      const float* gr = dy + r * cols + c0;
      const float m = mean[r], rs = rstd[r];
      for (int64_t k = 0; k < n; ++k) {
        sg[k] += double(gr[k]);
        sgx[k] += double(gr[k]) * double(layer_norm_xhat(xr[k], m, rs));
      }
    }
    for (int64_t k = 0; k < n; ++k) {
      if (dgamma) dgamma[c0 + k] += static_cast<float>(sgx[k]);
      if (dbeta) dbeta[c0 + k] += static_cast<float>(sg[k]);
    }
  }
}

}  // namespace ipg::kernels::cpu
