// Optimizer updates on CPU (OpenMP); every element is independent.
#include "kernels/cpu/optimizer.h"

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n,
                const SgdCoeffs& c) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    param[i] = sgd_element(param[i], grad[i], momentum_buffer ? momentum_buffer + i : nullptr, c);
}

void adam_update(float* param, const float* grad, float* m, float* v, int64_t n,
                 const AdamCoeffs& c) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) param[i] = adam_element(param[i], grad[i], m + i, v + i, c);
}

}  // namespace ipg::kernels::cpu
