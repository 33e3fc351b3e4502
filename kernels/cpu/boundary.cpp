// Boundary-search kernels on the CPU (OpenMP): the loss one row per iteration, the
// updates one row at a time (inactive rows skipped whole). Every element is computed by
// one thread with boundary_math's formulas, so any thread count gives the same bits.
#include "kernels/cpu/boundary.h"

#include <algorithm>

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void boundary_loss(BoundaryLoss kind, const float* z, int64_t rows, int64_t classes,
                   const int32_t* src, const int32_t* dst, float k, const float* k_rows,
                   const float* weight, float* loss, float* dz, int32_t* active) {
#pragma omp parallel for schedule(static) if (rows * classes >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float l = boundary_loss_row(kind, z + r * classes, static_cast<int>(classes), src[r],
                                      dst[r], k_rows ? k_rows[r] : k, weight ? weight[r] : 1.f,
                                      dz + r * classes);
    loss[r] = l;
    if (active && !(l > 0.f)) active[r] = 0;
  }
}

void boundary_adam_step(float* x, const float* g, float* m, float* v, int64_t rows, int64_t row_len,
                        const int32_t* active, const AdamCoeffs& c, float lo, float hi) {
#pragma omp parallel for schedule(static) if (rows * row_len >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    if (active && !active[r]) continue;
    const int64_t o = r * row_len;
    for (int64_t e = o; e < o + row_len; ++e)
      x[e] = boundary_adam_element(x[e], g[e], m + e, v + e, c, lo, hi);
  }
}

void boundary_adam_step_at(float* x, const float* g, float* m, float* v, int64_t rows,
                           int64_t row_len, const int32_t* active, const AdamCoeffs* table,
                           const int32_t* step, float lo, float hi) {
  boundary_adam_step(x, g, m, v, rows, row_len, active, table[*step], lo, hi);
}

void boundary_step_advance(int32_t* step) { ++*step; }

void boundary_sign_step(float* x, const float* x0, const float* g, int64_t rows, int64_t row_len,
                        const int32_t* active, float alpha, float eps, float lo, float hi) {
#pragma omp parallel for schedule(static) if (rows * row_len >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    if (active && !active[r]) continue;
    const int64_t o = r * row_len;
    for (int64_t e = o; e < o + row_len; ++e)
      x[e] = boundary_sign_element(x[e], x0[e], g[e], alpha, eps, lo, hi);
  }
}

namespace {
// Elements [0, n) of the step. The buffers never overlap (ops::boundary_cw_step checks it);
// saying so (__restrict) is what lets GCC vectorize the loop: proving it at run time would
// take 25 pairwise tests, more than it will version a loop for. The qualifiers do not survive
// OpenMP's outlining of a loop body, hence a function per block.
[[gnu::noinline]] void cw_step_block(float* __restrict u, float* __restrict t,
                                     float* __restrict x, const float* __restrict x0s,
                                     const float* __restrict g, float* __restrict m,
                                     float* __restrict v, int64_t n, const AdamCoeffs& c) {
  for (int64_t e = 0; e < n; ++e)
    boundary_cw_element(u + e, t + e, x + e, x0s[e], g[e], m + e, v + e, c);
}
constexpr int64_t kCwBlock = 4096;
}  // namespace

void boundary_cw_step(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                      float* v, int64_t rows, int64_t row_len, const AdamCoeffs& c) {
  const int64_t n = rows * row_len, blocks = (n + kCwBlock - 1) / kCwBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t o = b * kCwBlock;
    cw_step_block(u + o, t + o, x + o, x0s + o, g + o, m + o, v + o, std::min(kCwBlock, n - o), c);
  }
}

void boundary_cw_step_at(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                         float* v, int64_t rows, int64_t row_len, const AdamCoeffs* table,
                         const int32_t* step) {
  boundary_cw_step(u, t, x, x0s, g, m, v, rows, row_len, table[*step]);
}

void boundary_cw_track(const float* x, const float* x0s, const float* z, const int32_t* dst,
                       float kappa, const float* kappa_rows, int64_t rows, int64_t row_len,
                       int64_t classes, float* l2, int32_t* success, float* best_l2,
                       float* best_x) {
#pragma omp parallel for schedule(static) if (rows * row_len >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    // The same summation order as the CUDA kernel's: kCwLanes interleaved partial sums,
    // then added lane by lane.
    float part[kCwLanes] = {};
    for (int64_t e = 0; e < row_len; ++e) {
      const float d = x[r * row_len + e] - x0s[r * row_len + e];
      part[e % kCwLanes] += d * d;
    }
    float sum = 0.f;
    for (int l = 0; l < kCwLanes; ++l) sum += part[l];
    l2[r] = sum;
    const bool ok = boundary_cw_success(z + r * classes, static_cast<int>(classes), dst[r],
                                        kappa_rows ? kappa_rows[r] : kappa);
    success[r] = ok;
    if (ok && sum < best_l2[r]) {
      best_l2[r] = sum;
      std::copy_n(x + r * row_len, row_len, best_x + r * row_len);
    }
  }
}

}  // namespace ipg::kernels::cpu
